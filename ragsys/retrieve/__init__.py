"""Retrievers: sparse BM25 (`bm25`) and dense embeddings (`dense`).

Submodules are imported directly (`from ragsys.retrieve.bm25 import BM25Config`) so that
using BM25 never loads torch.
"""
