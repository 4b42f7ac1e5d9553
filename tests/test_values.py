"""One rule for the values every endpoint takes (demo.rules's ``number`` and ``text``), without a server and
through the API: each refusal names the parameter and says what is allowed, 中文 · English."""
from __future__ import annotations

import math
import os
import time

import httpx
import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError

from demo import form, rules
from demo.languages import in_language
from demo.lessons import LESSONS
from test_classroom import LAB_OPTIONS, TINY  # noqa: F401  (the same app's limits: a server of this module's own)

BAD = [None, "", 0.5, -1, 10**12, math.nan, "abc"]  # the sweep's values for every parameter


# ---------------------------------------------------------------- the rule, without a server
@pytest.mark.parametrize("value, rule, back", [
    (3, dict(whole=True, low=1, high=5), 3),
    (3.0, dict(whole=True, low=1, high=5), 3),   # a number box sends floats: a whole one counts as an int
    (0.5, dict(low=0, high=1), 0.5),
    (0, dict(whole=True, low=0, means="0 = all"), 0),
    (2**63 - 1, dict(whole=True, low=0, high=2**63 - 1), 2**63 - 1),
])
def test_allowed_numbers_come_back(value, rule, back):
    got = rules.number("x", value, **rule)
    assert got == back and type(got) is type(back)


@pytest.mark.parametrize("value, rule, english", [
    (0.5, dict(whole=True, low=1, high=2000), "x=0.5 is not allowed: a whole number from 1 to 2,000"),
    (-1, dict(whole=True, low=1, high=4096), "x=-1 is not allowed: a whole number from 1 to 4,096"),
    (10**12, dict(whole=True, low=1, high=4096), "x=1000000000000 is not allowed: a whole number from 1 to 4,096"),
    (None, dict(low=0, high=100), "x is empty: a number from 0 to 100"),
    ("", dict(low=0, high=100), "x is empty: a number from 0 to 100"),
    (math.nan, dict(), "x=nan is not allowed: a number"),
    (math.inf, dict(low=0), "x=inf is not allowed: a number, at least 0"),
    ("abc", dict(whole=True), "x='abc' is not allowed: a whole number"),
    ("5", dict(whole=True), "x='5' is not allowed: a whole number"),          # a text is no number, even "5"
    (True, dict(whole=True), "x=True is not allowed: a whole number"),        # nor is a bool
    (7, dict(whole=True, high=5, means="0 = all"), "x=7 is not allowed: a whole number, at most 5 (0 = all)"),
])
def test_refusals_name_the_parameter_and_what_is_allowed_in_both_languages(value, rule, english):
    with pytest.raises(rules.Refused) as err:
        rules.number("x", value, **rule)
    message = str(err.value)
    assert in_language(message, "en") == english
    chinese = in_language(message, "zh")
    assert chinese.startswith("x") and any("\u4e00" <= c <= "\u9fff" for c in chinese) and "allowed" not in chinese
    assert rules.problem(rules.number, "x", value, **rule) == message


def test_the_text_rule():
    assert rules.text("prefix", "分开", 50) == "分开"
    rule = "a text, not empty, of at most 50 characters"
    for value, english in [(None, f"prefix is empty: {rule}"), ("", f"prefix is empty: {rule}"),
                           (5, f"prefix=5 is not allowed: {rule}"),
                           ("x" * 51, f"prefix=a text of 51 characters is not allowed: {rule}")]:
        assert in_language(rules.problem(rules.text, "prefix", value, 50), "en") == english
    assert rules.problem(rules.text, "text", "x" * 3, 2, low=1).startswith("text='xxx' 不允许，须为不超过 2 个字符")


@pytest.mark.parametrize("name, value", [("seed", 0.5), ("epochs", math.nan), ("batch_size", "abc"),
                                         ("temperature", None), ("lr", math.inf), ("top_k", 2.5)])
def test_train_refuses_by_the_same_rule(name, value):
    problems = form.form_to_config({name: value, "decoding": "sample"})[1]
    assert set(problems) == {name}
    assert problems[name] == rules.problem(rules.number, name, value, **_rule_of(name))


def _rule_of(name: str) -> dict:
    s = form.BY_NAME[name]
    return dict(whole=s.kind == "int", low=s.low, high=s.high, means="0 = all" if name in rules.ALL_WHEN_EMPTY else "")


def test_train_keeps_what_an_empty_box_means():
    """top_k and max_chars: empty means all, as 0 does; θ is not read while clipping is off."""
    config, problems = form.form_to_config({"top_k": None, "max_chars": None, "clip": False, "theta": None,
                                            "decoding": "sample"})
    assert problems == {} and config.top_k is None and config.max_chars is None and config.clip_theta is None


def test_a_links_banner_does_not_offer_gradios_own_parameter():
    values, problems = form.from_query({"__theme": "dark", "epochs": "7"})
    assert problems == {} and values["epochs"] == 7
    banner = form.from_query({"foo": "1"})[1]["link"]
    assert "allowed: preset, corpus" in banner and "mode" in banner and "__theme" not in banner


# ---------------------------------------------------------------- through the API
def _message(call) -> str:
    """The message of the error ``call`` raises (a validator's or the function's)."""
    with pytest.raises((AppError, ValidationError)) as err:
        call()
    return str(err.value)


def test_the_issues_cases(server):
    """/next_chars with an empty temperature, /generate with a seed or top-k of 0.5, /hidden_units with a top of
    0.5, -1 or 10^12: refused, each naming its parameter and what is allowed (with or without a model)."""
    c = Client(server.url, verbose=False)
    for temperature in (None, ""):
        assert "temperature is empty: a number from 0 to 100 (0 = greedy)" in _message(
            lambda: c.predict("the", temperature, api_name="/next_chars"))
    assert "seed=0.5 is not allowed: a whole number from 0 to" in _message(
        lambda: c.predict("the", 20, "sample", 0.8, 0, 0.5, api_name="/generate"))
    assert "top_k=0.5 is not allowed: a whole number, at least 0 (0 = all)" in _message(
        lambda: c.predict("the", 20, "sample", 0.8, 0.5, 1, api_name="/generate"))
    assert "length=0.5 is not allowed: a whole number from 1 to 2,000" in _message(
        lambda: c.predict("the", 0.5, "sample", 0.8, 0, 1, api_name="/generate"))
    for top in (0.5, -1, 10**12):
        assert f"top={top!r} is not allowed: a whole number from 1 to 4,096" in _message(
            lambda: c.predict("the", top, api_name="/hidden_units"))
    assert "epochs=0.5 is not allowed: a whole number from 1 to 5,000" in _message(
        lambda: c.predict(0.5, api_name="/lesson_lr"))
    c.close()


def test_good_values_still_work_and_top_is_capped_by_the_models_units(server):
    c = Client(server.url, verbose=False)
    final = [out[5] for out in c.submit(**TINY, epochs=2, api_name="/train")][-1]
    assert final["status"] == "finished"
    units = c.predict("the", 4096, api_name="/hidden_units")["units"]
    assert len(units) == TINY["num_hiddens"]  # a model with fewer units than asked gives them all
    assert len(c.predict("the", 3.0, api_name="/hidden_units")["units"]) == 3  # 3.0 is the whole number 3
    text, note = c.predict("the", 5, "sample", 0.8, 0, 7, api_name="/generate")
    assert text.startswith("the") and len(text) == 8 and "written by run" in note
    assert len(c.predict("the", 0, api_name="/next_chars")["next"]) == 10
    c.close()


def _call(c: Client, endpoint: str, kwargs: dict, timeout: float = 30.0) -> tuple[str, str]:
    """("ok" | "refused" | "unsent", message) for one call; a streaming call that starts something is stopped.
    gradio_client sends no NaN (JSON has none: it raises before sending), so NaN is the rules' tests' part."""
    try:
        job = c.submit(**kwargs, api_name=endpoint)
    except ValueError as e:
        return "unsent", str(e)
    end = time.monotonic() + timeout
    while not job.done() and time.monotonic() < end:
        if job.outputs() and endpoint in STREAMS:
            c.predict(api_name="/stop")  # it started: a valid value; end what it started
            break
        time.sleep(0.05)
    while not job.done() and time.monotonic() < end:
        time.sleep(0.05)
    assert job.done(), f"{endpoint} {kwargs} hangs"
    try:
        result = job.result()
    except (AppError, ValidationError) as e:
        return "refused", str(e)
    except ValueError as e:  # the JSON encoder, again
        return "unsent", str(e)
    except httpx.HTTPStatusError as e:  # refused before the queue took it: Gradio's own check of its types
        return "http", f"{e.response.status_code} {e.response.text[:300]}"
    if isinstance(result, str) and result.startswith("✗"):  # /gpu_trial says what is wrong in its note
        return "refused", result
    return "ok", ""


STREAMS = ("/train", "/generate", "/watch") + tuple(f"/lesson_{k}" for k in LESSONS)
BASE = {"/train": {**TINY, "epochs": 1}, "/gpu_trial": {**TINY, "epochs": 1},
        "/experiment": {"question": "q?"}, "/join": {"code": "ZZZZ-ZZZZ", "nickname": "ann"}}
# Gradio checks a file parameter (a FileData) before any code of the app runs: a number or a text there gets
# Gradio's own refusal (a ValidationError of pydantic, which a client sees as "has raised an exception").
GRADIOS_OWN = "filepath"


@pytest.mark.slow  # every parameter of every endpoint with each of 7 bad values: about 350 calls, 1-2 minutes
def test_every_endpoint_answers_every_bad_value_clearly(server):
    c = Client(server.url, verbose=False)
    [out for out in c.submit(**TINY, epochs=1, api_name="/train")]  # a model, so the views get past "no model"
    endpoints = c.view_api(return_format="dict", print_info=False)["named_endpoints"]
    seen = {"refused": 0, "ok": 0, "unsent": 0, "http": 0}
    for endpoint, info in endpoints.items():
        if not info["parameters"]:
            assert _call(c, endpoint, {})[0] in ("ok", "refused"), endpoint
        for p in info["parameters"]:
            name, kind = p["parameter_name"], p["python_type"]["type"]
            for bad in BAD:
                outcome, message = _call(c, endpoint, {**BASE.get(endpoint, {}), name: bad})
                seen[outcome] += 1
                if kind == GRADIOS_OWN and bad is not None:
                    assert outcome in ("refused", "unsent", "http"), (endpoint, name, bad)
                    continue
                assert outcome != "http", (endpoint, name, bad, message)
                assert "has raised an exception" not in message, (endpoint, name, bad)
                if outcome == "refused" and not any(why in message for why in NOT_THE_VALUE):
                    assert name in message, f"{endpoint} {name}={bad!r}: {message}"
                if kind in ("float", "int") and bad in ("", "abc") and name != "pressed_at":
                    assert outcome == "refused", f"{endpoint} {name}={bad!r} was taken"
                if kind in ("float", "int") and bad == 0.5 and name in WHOLE:
                    assert outcome == "refused", f"{endpoint} {name}={bad!r} was taken"
    assert seen["refused"] > 150 and seen["ok"] > 20, seen
    assert "sessions" in c.predict(api_name="/stats")  # the server still answers
    c.close()


# answers to good values: no GPU here, nothing to save yet, no experiment opened by this client, and /join's BASE
# class, which does not exist (a good nickname is refused for it)
NOT_THE_VALUE = ("needs a CUDA GPU", "No model", "open an experiment first", "code: the class 'ZZZZ-ZZZZ' is unknown")
WHOLE = ("max_chars", "epochs", "batches", "num_hiddens", "batch_size", "num_steps", "seed", "pred_len",
         "pred_period", "top_k", "num_layers", "length", "top")
