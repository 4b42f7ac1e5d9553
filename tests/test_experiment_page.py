"""The class experiment's texts and pieces as a page shows them: each in the page's one language (no half of the
other), the default question following the epochs, the table scrolling inside its box, a phone's narrow chart."""
from __future__ import annotations

import re

import gradio as gr
import pytest

from charrnn.experiments import Free
from charrnn.lab import Lab, Limits
from demo import charts, class_chart
from demo.class_stream import title
from demo.class_views import student_banner
from demo.classroom import ended_outputs, watching_banner
from demo.experiment_panel import DEFAULT_QUESTION, question_for
from demo.languages import either, in_language
from demo.training import not_started

HAN = re.compile(r"[\u3400-\u9fff]")
CODE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}")  # a class code: the same in both languages


def english_words(text: str) -> set[str]:
    """The Latin words of a text, less class codes, Markdown and the settings' own names (lr, θ)."""
    return set(re.findall(r"[A-Za-z]{2,}", CODE.sub("", text))) - {"lr"}


@pytest.fixture
def experiment(tiny_config):
    lab = Lab(max_runs=2, limits=Limits(busy_runs=100))
    teacher = lab.session("teacher")
    exp = lab.open_experiment(teacher, "问题 question?", [Free.of("lr", 0.1, 100), Free.of("clip", 0.01, 10)],
                              tiny_config(), epochs=6)
    lab.join(lab.session("ann"), exp.code, "ann")
    yield exp
    lab.shutdown()


def test_either_gives_one_language_or_both():
    assert either("中", "en", "zh") == "中" and either("中", "en", "en") == "en"
    assert either("中", "en", "both") == "中 · en" and either("中", "en", "both", "\n") == "中\nen"
    with pytest.raises(ValueError):
        either("中", "en", "fr")


def test_the_experiments_texts_are_in_the_pages_one_language(experiment):
    texts = {
        "title": lambda lang: title(experiment, lang).split("\n", 1)[1],  # the question's line is the teacher's
        "ended title": lambda lang: title(None, lang, experiment.code),
        "student banner": lambda lang: student_banner(experiment, "ann", lang),
        "watching banner": lambda lang: watching_banner(experiment.code, lang),
        "experiment banner": lambda lang: watching_banner(experiment.code, lang, experiment=True),
        "unknown class": lambda lang: ended_outputs(experiment.code, lang)[0].replace("(./)", ""),
        "refused": lambda lang: not_started({"experiment": "the teacher removed you from this experiment"}, lang),
    }
    for name, text in texts.items():
        zh, en, both = text("zh"), text("en"), text("both")
        assert HAN.search(zh) and not english_words(zh) - {"ann"}, (name, zh)
        assert not HAN.search(en) and english_words(en), (name, en)
        assert HAN.search(both) and english_words(both), (name, both)
    # the student's banner names both free settings with the teacher's ranges, in each language
    assert "0.1–100" in student_banner(experiment, "ann", "en")
    assert "或不裁剪" in student_banner(experiment, "ann", "zh")
    # a refusal of no setting says only its message: no "experiment:" key
    assert not_started({"experiment": "the teacher removed you from this experiment"}, "zh") == \
        "✗ **未开始** — 老师已把你移出这个实验"


def test_the_default_question_follows_the_epochs_and_a_teachers_own_stays():
    for lang in ("both", "zh", "en"):
        asked = in_language(DEFAULT_QUESTION, lang)
        changed = question_for(asked, 25)
        assert changed == asked.replace("60", "25") and "60" not in changed, lang
        assert question_for(changed, 120) == asked.replace("60", "120")
    own = question_for("Does clipping matter at lr 10 in 60 epochs?", 30)
    assert isinstance(own, dict) and own.get("__type__") == gr.skip().get("__type__")  # left as the teacher wrote it
    assert question_for(in_language(DEFAULT_QUESTION, "en"), "x") == gr.skip()


def _entries(n: int) -> list[dict]:
    return [dict(id=i, run=1, latest=True, nickname=f"s{i}", lr=10.0 ** (i / n), clip=True, theta=1.0, epoch=3,
                 epochs=6, perplexity=20.0 + i, status="training", perplexities=[40.0, 30.0, 20.0 + i],
                 vocab_size=49) for i in range(n)]


def test_the_table_scrolls_in_its_own_box_and_its_heads_take_two_lines_in_both_languages():
    free = [Free.of("lr", 0.1, 100)]
    both, zh = class_chart.table_html(_entries(3), free, "both"), class_chart.table_html(_entries(3), free, "zh")
    assert both.startswith("<div class='class-table-scroll'><table") and both.endswith("</table></div>")
    assert "<th>名次<br>rank</th>" in both and "<th>名次</th>" in zh and "<br>" not in zh


def test_a_phones_class_chart_keeps_its_width_for_the_curves():
    free = [Free.of("lr", 0.1, 100)]
    wide = class_chart.class_figure(_entries(3), free, "全班的训练曲线 · the class's runs", charts.NORMAL, "both")
    phone = class_chart.class_figure(_entries(3), free, "全班的训练曲线 · the class's runs", charts.PHONE, "both")

    def bar(figure):
        return next(t["marker"]["colorbar"] for t in figure["data"] if t.get("uid") == "key")

    assert bar(phone)["title"]["side"] == "top" and bar(phone)["thickness"] < bar(wide)["thickness"]
    assert bar(wide)["title"]["side"] == "right"
    # the title one language a line on a phone; the uniform-guess label short there
    assert phone["layout"]["title"]["text"] == "全班的训练曲线<br>the class's runs"
    notes = [a["text"] for a in phone["layout"]["annotations"] if "uniform" in a.get("text", "")]
    wide_notes = [a["text"] for a in wide["layout"]["annotations"] if "uniform" in a.get("text", "")]
    assert notes and all("vocabulary" not in t for t in notes) and all("vocabulary" in t for t in wide_notes)


@pytest.mark.parametrize("lang, words", [("en", "set what the teacher left free"), ("zh", "改好老师留给你的设置"),
                                         ("both", "set what the teacher left free")])
def test_a_students_page_before_its_first_run_says_to_try_its_value(lang, words):
    """A student has no lessons and is not waiting for the teacher: its status line and empty chart say so."""
    from demo import render
    student = charts.own(charts.watching(charts.PHONE), student=True)
    assert student.empty == "student" and student.title_lines  # the screen's size kept, the watcher's look gone
    line = render.status_line(None, lang, student.empty)
    assert words in line and "lesson" not in line and "课" not in line and "teacher —" not in line
    assert render.status_line(None, lang, charts.own(student).empty) == render.WORDS[lang]["ready"]
    assert render.status_line(None, lang, charts.watching(student).empty) == render.WORDS[lang]["waiting"]
    empty = [a["text"] for a in charts.perplexity_figure([], student, lang)["layout"]["annotations"]]
    assert any(("试试你的值" if lang == "zh" else "try your value") in t for t in empty), empty
