"""Tiny random models, built offline from configs and saved as safetensors folders.

Tests need real model *folders* (to exercise `ragsys.models` loading, fingerprints and
the safetensors-only rule), not just in-memory modules, and must not download anything.
Each builder trains a tokenizer on `CORPUS` with the `tokenizers` library, builds a
seeded random model a few thousand parameters big and saves both. The weights are
meaningless; tests assert on shapes, plumbing and determinism, never on quality.

Usage (a session-scoped fixture builds each once)::

    @pytest.fixture(scope="session")
    def tiny_st(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return make_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st"))
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

SEED = 0

CORPUS = (
    "Aspirin reduces the risk of heart attack in adults.",
    "Vitamin D deficiency is common in northern countries.",
    "The protein binds to the receptor and blocks the signal.",
    "Mice treated with the drug lived longer than controls.",
    "Smoking increases the risk of lung cancer.",
    "Exercise improves insulin sensitivity in older patients.",
    "The vaccine produced antibodies in most volunteers.",
    "Gene expression changed after twelve hours of exposure.",
    "Randomized trials found no effect on mortality.",
    "Inflammation markers fell during the treatment period.",
    "The cells divided faster at higher temperatures.",
    "Sleep loss impairs memory and attention.",
    "Revenue grew ten percent compared with the prior quarter.",
    "Net income was four billion dollars for the quarter.",
    "The company repurchased shares during the fiscal year.",
    "Operating expenses increased due to research and development.",
    "Gross margin declined because of higher component costs.",
    "Cash and cash equivalents totaled twenty billion dollars.",
    "The board declared a quarterly dividend per share.",
    "Data center sales drove most of the growth.",
    "Foreign exchange rates reduced reported revenue.",
    "Inventory rose as supply constraints eased.",
    "Is the claim supported by the abstract?",
    "What was the total revenue in the third quarter?",
    "Which drug lowered blood pressure the most?",
    "Does the study show a causal effect?",
    "The answer is yes, according to the passage.",
    "The answer is no, the evidence does not support it.",
    "Paris is the capital of France.",
    "Water boils at one hundred degrees Celsius.",
    "The model retrieves passages and then answers the question.",
    "Citations point to the page where the evidence appears.",
    "Tables list values in rows and columns.",
    "A small model can be trained quickly on a laptop.",
    "Cite the passage number in square brackets like [1].",
    "I do not know based on the given context.",
)

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CHAT_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# ChatML, the format SmolLM2 and Qwen use, so generator tests see realistic prompts.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _wordpiece_tokenizer() -> PreTrainedTokenizerFast:
    """A BERT-style uncased WordPiece tokenizer; the trainer is deterministic for a fixed corpus."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=400, special_tokens=list(BERT_SPECIALS), show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )


def _bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (as Llama-family models use) with ChatML special tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(CHAT_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        model_max_length=256,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def _bert_config(vocab_size: int, **extra: int) -> BertConfig:
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        **extra,
    )


def make_tiny_sentence_transformer(dir: Path) -> Path:
    """BERT (hidden 32, 2 layers) + mean pooling + Normalize, saved as a SentenceTransformer folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    tokenizer = _wordpiece_tokenizer()
    with torch.random.fork_rng(devices=[]):  # seed locally: leave the caller's RNG untouched
        torch.manual_seed(SEED)
        bert = BertModel(_bert_config(len(tokenizer)))
    hf_dir = dir / "hf"
    bert.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    transformer = Transformer(str(hf_dir), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, Pooling(32, "mean"), Normalize()], device="cpu")
    out = dir / "sentence-transformer"
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def make_tiny_cross_encoder(dir: Path) -> Path:
    """BERT with a 1-logit classification head: the usual cross-encoder folder layout."""
    tokenizer = _wordpiece_tokenizer()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = BertForSequenceClassification(_bert_config(len(tokenizer), num_labels=1))
    out = dir / "cross-encoder"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def make_tiny_causal_lm(dir: Path) -> Path:
    """A 2-layer Llama with a ChatML template, so `apply_chat_template` and `generate` work."""
    tokenizer = _bpe_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = LlamaForCausalLM(config)
    out = dir / "causal-lm"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
