"""Packing one stream's pieces into chunks: greedy, breaking where the structure allows.

See `ragsys.chunk.chunker` for the rules; `Packer.ranges` returns (first, end) piece ranges
whose real token counts are within the bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from ragsys.chunk.pieces import NO_BREAK, Bounds, Piece
from ragsys.chunk.tokens import count_all
from ragsys.protocols import TokenCounter
from ragsys.types import Page


class Packer:
    """Greedy packing of one stream's pieces into (first, end) piece ranges."""

    def __init__(
        self, config: Bounds, count_tokens: TokenCounter, pages: Sequence[Page], pieces: Sequence[Piece]
    ) -> None:
        self._cfg, self._count, self._pages, self._pieces = config, count_tokens, pages, pieces
        self._prefix = [0, *accumulate(p.tokens for p in pieces)]

    def ranges(self) -> list[tuple[int, int]]:
        """Packs on summed piece counts and checks every chunk in one batch; only a stream
        where a real count exceeds the bound (a tokenizer whose counts do not add up) is
        packed again, counting each chunk as it goes."""
        out = self._pack(verify=False)
        multi = [(a, b) for a, b in out if b - a > 1]
        sizes = count_all(self._count, [self.text(a, b) for a, b in multi])
        return out if all(n <= self._cfg.max_tokens for n in sizes) else self._pack(verify=True)

    def _pack(self, verify: bool) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        fresh, n = 0, len(self._pieces)
        while fresh < n:
            start = self._overlap_start(out[-1][0], fresh) if out else fresh
            end = self._fit(start, fresh, verify) if start < fresh else None
            if end is None:
                start, end = fresh, self._fit(fresh, fresh, verify)
            assert end is not None  # without overlap a chunk always fits (see _choose_end)
            out.append((start, end))
            fresh = end
        return out

    def text(self, first: int, end: int) -> str:
        a, b = self._pieces[first], self._pieces[end - 1]
        if a.page == b.page:
            return self._pages[a.page].text[a.start : b.end]
        middle = [self._pages[i].text for i in range(a.page + 1, b.page)]
        return "\n\n".join([self._pages[a.page].text[a.start :], *middle, self._pages[b.page].text[: b.end]])

    def _overlap_start(self, prev_start: int, fresh: int) -> int:
        """Earliest sentence start in the previous chunk's prose tail within `overlap_tokens`."""
        nxt = self._pieces[fresh]
        if nxt.kind != "text" or nxt.force:
            return fresh
        best, i = fresh, fresh - 1
        while (
            i > prev_start
            and self._pieces[i].kind == "text"
            and self._prefix[fresh] - self._prefix[i] <= self._cfg.overlap_tokens
        ):
            best = i if self._pieces[i].lead else best
            i -= 1
        return best

    def _fit(self, start: int, fresh: int, verify: bool) -> int | None:
        """An end past `fresh`; with `verify`, one whose real count fits, shrinking on overflow."""
        stop = len(self._pieces)
        while True:
            end = self._choose_end(start, fresh, stop)
            if end is None or end - start == 1 or not verify:
                return end
            if self._count(self.text(start, end)) <= self._cfg.max_tokens:
                return end
            if end - 1 <= fresh:  # only with overlap: a lone piece is always accepted above
                return None
            stop = end - 1

    def _choose_end(self, start: int, fresh: int, stop: int) -> int | None:
        """Packs from `start` while it fits; then picks an end past `fresh` (new text is a must)."""
        pieces, cap, n = self._pieces, self._cfg.max_tokens, len(self._pieces)
        end, new_text = start, 0
        while end < stop:
            p = pieces[end]
            if end > fresh and (
                p.force or (p.kind == "heading" and new_text >= self._cfg.heading_min_tokens)
            ):
                return self._drop_trailing_headings(start, fresh, end)
            if end > start and self._prefix[end + 1] - self._prefix[start] > cap:
                break
            new_text += p.tokens if end >= fresh and p.kind != "heading" else 0
            end += 1
        if end == n:
            return n
        body = next((i for i in range(start, end) if pieces[i].kind != "heading"), end)
        for pool in self._candidates(fresh, end, body):
            if pool:
                return self._drop_trailing_headings(start, fresh, self._pick(start, pool))
        return None if start < fresh else max(end, fresh + 1)

    def _candidates(self, fresh: int, end: int, body: int) -> tuple[list[int], ...]:
        """Ends to choose from, in order of preference: legal breaks that leave some body text
        in the chunk; then, rather than leave a heading alone, any sentence start or table row
        inside a block that fits on its own; then legal breaks that leave only headings."""
        pieces, span = self._pieces, range(fresh + 1, end + 1)
        legal = [b for b in span if pieces[b].brk > NO_BREAK]
        soft = [
            b
            for b in span
            if b > body and (pieces[b].lead or pieces[b].kind == "row" or pieces[b].brk > NO_BREAK)
        ]
        return [b for b in legal if b > body], soft, legal

    def _pick(self, start: int, pool: list[int]) -> int:
        """The strongest, then latest, boundary that leaves the chunk half full, else the latest."""
        full = [b for b in pool if self._prefix[b] - self._prefix[start] >= self._cfg.max_tokens // 2]
        return max(full, key=lambda b: (self._pieces[b].brk, b)) if full else pool[-1]

    def _drop_trailing_headings(self, start: int, fresh: int, end: int) -> int:
        while end - 1 > max(start, fresh) and self._pieces[end - 1].kind == "heading":
            end -= 1
        return end
