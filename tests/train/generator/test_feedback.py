"""Feedback as training signal: thumbs from labels, KTO weights and pairs, preference pairs."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import pytest

from ragsys.feedback.records import new_record
from ragsys.train.generator.data import Example, Templater
from ragsys.train.generator.feedback import (
    answer_label,
    kto_examples,
    kto_weights,
    preference_pairs,
    thumbs_from_labels,
)
from ragsys.types import Answer, Hit
from tests.fixtures.factories import make_hit
from tests.fixtures.train_generator import ITEMS, make_hits, make_prompt


def _answer(question: str, text: str, hits: list[Hit]) -> Answer:
    return Answer(question=question, text=text, abstained=False, contexts=tuple(hits))


def test_the_thumb_judges_the_verdict_the_answer_states() -> None:
    class Chooser:
        asked = 0

        def choose(self, answer: Answer, options: Sequence[str]) -> tuple[str, list[float]]:
            Chooser.asked += 1
            return "no", [0.0, 1.0, 0.0]

    class Model:
        def disable_adapter(self) -> Any:  # what `reference` enters around the label step
            return contextlib.nullcontext()

    class Ctx:
        label_options = ("yes", "no", "maybe")
        model = Model()
        generator = Chooser()

    ctx: Any = Ctx()
    assert answer_label(ctx, _answer("q", "Yes. It works.", make_hits())) == "yes"
    assert Chooser.asked == 0  # the stated verdict wins over the label step
    assert answer_label(ctx, _answer("q", "It works well.", make_hits())) == "no"  # none stated: the step
    assert answer_label(ctx, _answer("q", "It works well.", [])) == "maybe"  # no passages: the rule
    assert Chooser.asked == 1


def test_thumbs_from_labels_rate_by_the_chosen_label() -> None:
    hits = make_hits()
    answers = [
        _answer(i.question, t, hits) for i, t in zip(ITEMS, ("x", "Yes, floods.", "Yes."), strict=True)
    ]
    read = thumbs_from_labels(ITEMS, answers)  # labels read off the answer text
    assert [(r.question, r.rating) for r in read] == [(ITEMS[1].question, "up"), (ITEMS[2].question, "down")]
    assert read[0].contexts == ("c1", "c2")
    chosen = thumbs_from_labels(ITEMS, answers, labels=["yes", "no", "no"])
    assert [r.rating for r in chosen] == ["down", "up"]


def test_kto_weights_rebalance_to_the_papers_range() -> None:
    def ex(n_up: int, n_down: int) -> list[Example]:
        return [Example(seqs=(), desirable=True)] * n_up + [Example(seqs=(), desirable=False)] * n_down

    assert kto_weights(ex(4, 4), None, None) == (1.0, 1.0)
    assert kto_weights(ex(1, 4), None, None) == (4.0, 1.0)
    w_d, w_u = kto_weights(ex(8, 2), None, None)
    assert w_d * 8 / (w_u * 2) == pytest.approx(4 / 3)
    assert kto_weights(ex(1, 4), 2.0, None) == (2.0, 0.5)
    assert kto_weights(ex(1, 4), 3.0, 5.0) == (3.0, 5.0)
    assert kto_weights(ex(3, 0), None, None) == (1.0, 1.0)


def test_kto_examples_pair_each_prompt_with_another_answer(lm: tuple[Any, Any]) -> None:
    _, tokenizer = lm
    t = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>")
    records = [new_record(f"q{i}", f"answer {i}", (), "v", "up" if i % 2 else "down") for i in range(4)]
    prompts = [make_prompt(tokenizer, make_hits()[: 1 + i % 2]) for i in range(4)]
    examples, too_long = kto_examples(t, records, prompts, max_length=1000, seed=0)
    assert too_long == 0 and len(examples) == 4
    own = {tokenizer.decode(list(e.seqs[0].ids[e.seqs[0].n_prompt :])) for e in examples}
    other = {tokenizer.decode(list(e.seqs[1].ids[e.seqs[1].n_prompt :])) for e in examples}
    assert own == other == {f"answer {i}<|im_end|>" for i in range(4)}
    for e in examples:
        assert e.seqs[0].ids[: e.seqs[0].n_prompt] == e.seqs[1].ids[: e.seqs[1].n_prompt]
        assert e.seqs[0].ids != e.seqs[1].ids


def test_preference_pairs_from_revisions_and_opposite_thumbs() -> None:
    records = [
        new_record("q1", "wrong", ("c1",), "v", "down", revision="right [1]"),
        new_record("q2", "good", ("c1",), "v", "up"),
        new_record("q2", "bad", ("c2",), "v", "down"),
        new_record("q2", "worse", ("c2",), "v", "down"),
        new_record("q3", "same", (), "v", "up", revision="same"),  # no change: no pair
    ]
    pairs = preference_pairs(records)
    assert [(p.chosen, p.rejected, p.kind) for p in pairs] == [
        ("right [1]", "wrong", "revision"), ("good", "bad", "thumbs"), ("good", "worse", "thumbs"),
    ]  # fmt: skip
    assert pairs[1].source.contexts == ("c1",)  # the up answer's prompt
    assert [p.kind for p in preference_pairs(records, thumbs=False)] == ["revision"]


def test_an_own_answer_is_right_by_its_figures_or_its_words_and_abstains_only_when_it_should() -> None:
    from ragsys.eval.evalset import EvalItem
    from ragsys.train.generator.feedback import answer_is_right

    hits = make_hits()
    figure = EvalItem(id="f", question="Revenue?", split="train", answer="Revenue was $29.6 million.")
    words = EvalItem(
        id="w", question="What ruined it?", split="train", answer="Spring floods ruined the harvest."
    )
    absent = EvalItem(id="u", question="Q4 revenue?", split="train", answer=None, answerable=False)
    assert answer_is_right(figure, _answer("q", "It brought in $29.6 million [1].", hits))
    assert not answer_is_right(figure, _answer("q", "It brought in $18.2 million [1].", hits))
    assert answer_is_right(words, _answer("q", "Spring floods ruined the harvest [2].", hits))
    assert not answer_is_right(words, _answer("q", "A drought did.", hits))
    refused = Answer(question="q", text="I do not know.", abstained=True, contexts=tuple(hits))
    assert answer_is_right(absent, refused) and not answer_is_right(words, refused)
    assert not answer_is_right(absent, _answer("q", "It was $3 million.", hits))


def test_own_mistakes_become_down_thumbs_revised_to_the_sft_target(lm: tuple[Any, Any]) -> None:
    from ragsys.eval.evalset import EvalItem
    from ragsys.train.generator.cache import WorkCache
    from ragsys.train.generator.feedback import REFERENCE_VERSION, reference_feedback

    _, tokenizer = lm
    hits = make_hits()
    items = [
        EvalItem(id="a", question="What ruined the harvest?", split="train", answer="Spring floods.",
                 gold_doc_ids=("fruit.md",)),
        EvalItem(id="b", question="What do drives need?", split="train", answer="Grease.",
                 gold_doc_ids=("robots.md",)),
        EvalItem(id="c", question="Is it safe?", split="train", answer="Yes.", label="yes"),  # not here
        EvalItem(id="d", question="What was spent?", split="train", answer="It spent $4,444 million.",
                 gold_doc_ids=("robots.md",)),
    ]  # fmt: skip
    said = {"What ruined the harvest?": "Spring floods [2].", "What do drives need?": "Oil and water.",
            "What was spent?": "It spent $1 million [1]."}  # fmt: skip

    class Generator:
        config = type("C", (), {"abstain_text": "I do not know."})()
        calls = 0

        def generate(self, question: str, context: list[Hit]) -> Answer:
            Generator.calls += 1
            return _answer(question, said[question], context)

        def prompt(self, question: str, context: Sequence[Hit]) -> Any:
            return make_prompt(tokenizer, list(context))

    class Model:
        def disable_adapter(self) -> Any:
            return contextlib.nullcontext()

    class Ctx:
        generator = Generator()
        model = Model()
        cache = WorkCache()
        templater = Templater(
            lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>", max_new_tokens=48
        )
        abstain_text = "I do not know."
        targets = "supported"
        out_of_time = False

        def __init__(self) -> None:
            self.items = items

        def stop_answering(self) -> bool:
            return self.out_of_time

        def search(self, questions: Sequence[str]) -> list[list[Hit]]:
            return [hits for _ in questions]

        def report(self, *args: Any) -> None:
            pass

    ctx: Any = Ctx()
    records = reference_feedback(ctx)
    assert [(r.question, r.rating) for r in records] == [
        (items[0].question, "up"),
        (items[1].question, "down"),
        (items[3].question, "down"),
    ]
    assert records[0].revision is None and all(r.pipeline_version == REFERENCE_VERSION for r in records)
    assert records[1].revision == "Grease. [1]"  # the reference, citing the gold passage it was given
    assert records[1].answer == "Oil and water." and records[1].contexts == ("c1", "c2")
    pairs = preference_pairs(records, thumbs=False)  # what CLAIR learns from
    # no passage states the figure: the whole reference, for `grounding` to search for
    assert records[2].revision == "It spent $4,444 million."
    assert [(p.chosen, p.rejected) for p in pairs][0] == ("Grease. [1]", "Oil and water.")
    again = reference_feedback(ctx)
    assert Generator.calls == 3  # answers are cached (a stopped run resumes), not regenerated
    assert [(r.rating, r.revision) for r in again] == [(r.rating, r.revision) for r in records]
    late: Any = Ctx()
    late.cache, late.out_of_time = WorkCache(), True  # out of time: one answer, then no more
    assert [r.question for r in reference_feedback(late)] == [items[0].question]
    assert Generator.calls == 4
    late.cache = ctx.cache  # answers already made are used whatever the time
    assert len(reference_feedback(late)) == 3 and Generator.calls == 4


def test_a_revision_is_also_an_up_thumb_on_the_revised_answers_prompt() -> None:
    from ragsys.feedback.records import FeedbackRecord
    from ragsys.train.generator.feedback import revised_thumbs

    def rec(answer: str, rating: str, revision: str | None = None) -> FeedbackRecord:
        return FeedbackRecord(question="q?", answer=answer, contexts=("c1", "c2"), pipeline_version="v",
                              rating=rating, revision=revision)  # type: ignore[arg-type]  # fmt: skip

    records = [rec("$5 million.", "down", "$7 million [1]."), rec("Fine [1].", "up"), rec("No.", "down"),
               rec("Same.", "down", " Same. ")]  # fmt: skip
    (up,) = revised_thumbs(records)
    assert (up.answer, up.rating, up.revision, up.contexts) == ("$7 million [1].", "up", None, ("c1", "c2"))


def test_users_revisions_are_learned_cited_by_their_passages_and_unsupported_ones_dropped(
    lm: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's expert revises to the reference, which cites nothing: CLAIR and KTO learn the
    revision with the `[n]` of the passages stating its figures. One its passages do not state is
    searched for with the revision as the query and learned on the passages found; one nothing
    found states is dropped."""
    from collections import Counter

    from ragsys.feedback.records import FeedbackRecord
    from ragsys.train.generator import feedback as fb

    _, tokenizer = lm
    hits = [
        make_hit("c1", "|Total net sales|82,959|", doc_id="/d/a.pdf"),
        make_hit("c2", "Other.", doc_id="/d/b.pdf"),
    ]
    cash = make_hit("c3", "|Cash and equivalents|4,444|", doc_id="/d/c.pdf")
    prompt = make_prompt(tokenizer, hits)
    queries: list[str] = []

    def search(texts: Sequence[str]) -> list[list[Hit]]:
        queries.extend(texts)
        return [[cash] if "4,444" in t else [hits[1]] for t in texts]

    def rec(question: str, revision: str) -> FeedbackRecord:
        return FeedbackRecord(question=question, answer="Sales were $1 million [2].", contexts=("c1", "c2"),
                              pipeline_version="v", rating="down", revision=revision)  # fmt: skip

    records = [rec("q1", "Sales were $82,959 million."), rec("q2", "Cash was $4,444 million."),
               rec("q3", "Debt was $9,999 million.")]  # fmt: skip
    monkeypatch.setattr(fb, "record_prompts", lambda ctx, rs: ([prompt] * len(rs), Counter()))
    monkeypatch.setattr(fb, "reference_feedback", lambda ctx: [])
    monkeypatch.setattr(fb, "labelled_thumbs", lambda ctx: [])
    templater = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>", max_new_tokens=48)
    ctx: Any = type("Ctx", (), {"templater": templater, "abstain_text": "I do not know.", "feedback": records,
                                "reviser": None, "items": [], "max_length": 512, "seed": 0, "k": 2,
                                "search": staticmethod(search)})()  # fmt: skip

    def completion(seq: Any) -> str:
        return str(tokenizer.decode(seq.ids[seq.n_prompt :], skip_special_tokens=True)).strip()

    def prompt_text(seq: Any) -> str:
        return str(tokenizer.decode(seq.ids[: seq.n_prompt]))

    examples, stats = fb.clair_data(ctx)
    assert queries == ["Cash was $4,444 million.", "Debt was $9,999 million."]  # only the unsupported
    learned = [completion(e.seqs[0]) for e in examples]
    assert learned[0] == "Sales were $82,959 million. [1]"
    assert len(learned) == 2 and "$4,444 million" in learned[1]
    text = prompt_text(examples[1].seqs[0])  # the found passage in for the last retrieved one
    assert "Cash and equivalents" in text and "Total net sales" in text and "Other." not in text
    found_first = text.index("Cash and equivalents") < text.index("Total net sales")
    assert learned[1].endswith("[1]" if found_first else "[2]")  # cited by the passage found
    assert text == prompt_text(examples[1].seqs[1])  # the pair shares the new prompt
    assert stats["revisions_unsupported"] == 1 and stats["revisions_grounded_by_search"] == 1
    examples, stats = fb.kto_data(ctx)
    ups = [completion(e.seqs[0]) for e in examples if e.desirable]
    assert sorted(ups) == sorted(learned)
    assert stats["revisions_unsupported"] == 1 and stats["revisions_grounded_by_search"] == 1


def test_sft_learns_a_reference_without_gold_documents_as_a_cited_revision(lm: tuple[Any, Any]) -> None:
    """The loop's tuner eval set is the expert's revisions: no gold document says which passage
    backs them. SFT learns each one cited sentence by sentence (searched for when its passages
    do not state it), drops what nothing states, and leaves gold-document items as they were."""
    from ragsys.eval.evalset import EvalItem
    from ragsys.train.generator.data import DataContext
    from ragsys.train.generator.grounding import sft_grounded_data

    _, tokenizer = lm
    hits = [make_hit("c1", "|Total net sales|82,959|", doc_id="/d/a.pdf"),
            make_hit("c2", "Harmonic drives need grease.", doc_id="/d/robots.md")]  # fmt: skip
    cash = make_hit("c3", "|Cash and equivalents|4,444|", doc_id="/d/c.pdf")
    queries: list[str] = []

    def search(texts: Sequence[str]) -> list[list[Hit]]:
        queries.extend(texts)
        return [[cash] if "4,444" in t else hits for t in texts]

    def item(i: str, answer: str, **kw: Any) -> EvalItem:
        return EvalItem(id=i, question=f"question {i}?", split="train", answer=answer, **kw)

    items = [
        item("a", "Sales were $82,959 million. So sales rose a lot."), item("b", "Cash was $4,444 million."),
        item("c", "Tariffs hurt margins."), item("d", "Drives need grease.", gold_doc_ids=("robots.md",)),
    ]  # fmt: skip
    generator: Any = type("G", (), {"config": type("C", (), {"abstain_text": "I do not know."})()})()
    templater = Templater(lambda q, h: make_prompt(tokenizer, h), tokenizer, "<|im_end|>", max_new_tokens=48)
    ctx = DataContext(templater=templater, model=None, generator=generator, search=search, index=None,  # type: ignore[arg-type]
                      items=items, feedback=(), max_length=512, seed=0, k=2)  # fmt: skip
    examples, stats = sft_grounded_data(ctx)
    learned = sorted(str(tokenizer.decode(s.ids[s.n_prompt :], skip_special_tokens=True)).strip()
                     for e in examples for s in e.seqs)  # fmt: skip
    assert learned[0].startswith("Cash was $4,444 million.") and learned[0].endswith("]")  # found by search
    assert learned[1] == "Drives need grease. [2]"  # a gold-document item: the SFT target as before
    assert learned[2] == "Sales were $82,959 million. [1]"  # uncited prose dropped
    assert (
        len(learned) == 3 and stats["skipped_unsupported"] == 1 and stats["revisions_grounded_by_search"] == 1
    )
    assert (
        "Cash was $4,444 million." in queries and "Tariffs hurt margins." not in queries
    )  # no figure: no search
