"""Citations traced after generation: which passages an uncited answer was drawn from."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragsys.generate.attribution import MAX_SENTENCES, attribution, cite_suffix, sentence_ends
from ragsys.generate.config import GeneratorConfig
from ragsys.generate.local import LocalGenerator
from ragsys.models import load_tokenizer
from tests.fixtures.factories import make_hit
from tests.fixtures.generators import HITS, QUESTION, generator_config
from tests.fixtures.scripted_decoders import ChoosingDecoder

SALES = "Total net sales were $82,959 million for the quarter, up from $81,797 million a year ago."
WEATHER = "Weather in the quarter was mild across most regions, which helped store traffic."
COSTS = "Operating expenses rose to $12,809 million, driven by research and development."


def test_a_copied_passage_is_its_source() -> None:
    assert attribution(SALES, [WEATHER, SALES, COSTS]) == [2]
    assert cite_suffix(SALES, [WEATHER, SALES, COSTS]) == " [2]"


def test_an_answer_joining_two_passages_cites_both() -> None:
    assert attribution(f"{COSTS} {SALES}", [SALES, WEATHER, COSTS]) == [1, 3]


def test_a_stray_phrase_names_no_source() -> None:
    # half of the answer from one passage, a few words from another: only the first is a source
    answer = f"{SALES} Research and development was the main driver, with more engineers hired worldwide."
    assert attribution(answer, [SALES, COSTS]) == [1]


def test_shared_vocabulary_is_not_copying() -> None:
    answer = "The quarter's net sales and operating expenses were mild compared with the weather."
    assert attribution(answer, [SALES, WEATHER, COSTS]) == []
    assert cite_suffix(answer, [SALES, WEATHER, COSTS]) == ""


def test_too_short_or_no_passages() -> None:
    assert attribution("Net sales rose", [SALES]) == []  # one trigram: too short to trace
    assert attribution(SALES, []) == []


def test_repetition_of_a_passage_phrase_is_traced_to_it() -> None:
    # the tuned 10-Q model's uncited answers: a passage's phrase repeated to the token limit
    answer = "total net sales were $82,959 million, total net sales were $82,959 million, total net"
    assert attribution(answer, [WEATHER, SALES]) == [2]


def test_sentence_ends_skip_short_sentences_and_keep_an_unfinished_last_one() -> None:
    text = "Net sales rose in the quarter. Yes. Costs fell in every region\n1. Up\nMargins held up well"
    assert [text[:e][-6:] for e in sentence_ends(text)] == ["arter.", "region", "p well"]
    assert sentence_ends("Up. Down.") == []
    assert len(sentence_ends("It rose by a lot. " * 40)) == MAX_SENTENCES


@pytest.mark.parametrize("mode", ["copied", "scored"])
def test_scored_attribution_asks_the_model_at_each_sentence_end(tiny_lm_path: Path, mode: str) -> None:
    """A looping answer copies no passage: "copied" leaves it uncited, "scored" cites what the
    model scores likeliest after each sentence, appended so the streamed text stays a prefix."""
    tokenizer = load_tokenizer(str(tiny_lm_path))
    reply = "The company grew a great deal. The company grew a great deal. The"
    decoder = ChoosingDecoder(tokenizer, reply, favourite=2)
    config = generator_config(max_new_tokens=40, attribution=mode)
    hits = [make_hit("a", WEATHER), make_hit("b", SALES)]
    streamed: list[str] = []
    answer = LocalGenerator(config, decoder, tokenizer).stream("Did it grow?", hits, streamed.append)
    if mode == "copied":
        assert answer.text == reply and not answer.citations and decoder.asked == []
        return
    assert answer.text == reply + " [2]" and [c.chunk_id for c in answer.citations] == ["b"]
    assert answer.cited_after and "".join(streamed) == answer.text
    assert len(decoder.asked) == 2 and all(a.rstrip().endswith("deal. [") for a in decoder.asked)


def test_answers_are_scored_for_citations_by_default_but_not_a_trainers_own() -> None:
    assert GeneratorConfig().attribution == "scored"
    assert GeneratorConfig().for_training().attribution == "copied"  # data: what the model wrote
    assert GeneratorConfig(attribution="off").for_training().attribution == "off"


@pytest.mark.parametrize("backend", ["transformers", "llama-cpp"])
def test_a_real_model_scores_a_passage_number_for_every_sentence(tiny_lm_path: Path, backend: str) -> None:
    """On each backend's real scoring path (one forward step per sentence), the suffix names
    passages that exist, and the model is asked once per sentence of four or more words."""
    if backend == "llama-cpp":
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install builds it)")
    gen = generator_config(model=str(tiny_lm_path), backend=backend).build()
    assert isinstance(gen, LocalGenerator)
    prompt = gen.prompt(QUESTION, HITS)  # the tiny model's window is 256 tokens: its own corpus
    text = "Aspirin helps many people with pain. It does so twice. Yes."
    suffix = gen._cite_after(prompt, text)
    numbers = [int(n) for n in suffix.strip(" []").split("][")]
    assert (
        suffix.startswith(" [")
        and 1 <= len(numbers) <= 2
        and all(1 <= n <= len(prompt.passages) for n in numbers)
    )
