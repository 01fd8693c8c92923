"""Every user-visible string reaches the translators, and a translation shows in the widgets.

Strings kept outside a widget (the filter labels in module-level tuples, texts made by the
worker-thread tasks) are invisible to ``self.tr()`` extraction unless they are marked. These
tests run the real extractor, ``pyside6-lupdate`` (it ships with PySide6 and needs no
display), over ``netcore_desktop/ui`` into a temporary ``.ts`` file and check that those
strings are in it under the context they are translated with; then they compile a
translation with ``pyside6-lrelease`` and check that the filter boxes show it.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QTranslator

from netcore_desktop.ui import bulk_job, history_browser
from netcore_desktop.ui.log_model import LogFilterModel, ResponseLogModel
from netcore_desktop.ui.log_view import describe_entry
from netcore_desktop.ui.send_worker import LogEntry

from ._support import dispose

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "netcore_desktop" / "ui"
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} should ship with PySide6 next to {sys.executable}"
    return str(path)


@pytest.fixture(scope="module")
def ts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``.ts`` file the extractor writes for the whole window code."""
    ts = tmp_path_factory.mktemp("i18n") / "netcore_desktop.ts"
    sources = sorted(str(p) for p in UI.glob("*.py"))
    subprocess.run([_tool("pyside6-lupdate"), *sources, "-ts", str(ts)], check=True,
                   capture_output=True, timeout=120)
    return ts


def _extracted(ts: Path) -> dict[str, set[str]]:
    """Context name → source texts found."""
    found: dict[str, set[str]] = {}
    for context in ET.parse(ts).getroot().iter("context"):
        texts = found.setdefault(context.findtext("name") or "", set())
        texts.update(m.findtext("source") or "" for m in context.iter("message"))
    return found


def test_the_filter_labels_are_found_by_the_extractor(ts_file: Path) -> None:
    found = _extracted(ts_file)
    status_labels = {label for label, _ in history_browser._STATUS_CHOICES}
    row_labels = {label for label, _ in bulk_job._FILTERS}
    assert "accepted (sent or queued)" in status_labels and "All rows" in row_labels
    assert status_labels <= found["HistoryBrowser"]
    assert row_labels <= found["BulkJobPanel"]


def test_texts_made_outside_widget_methods_are_found_too(ts_file: Path) -> None:
    found = _extracted(ts_file)
    expected = {
        # The history's answer pane and the worker tasks' messages.
        "HistoryBrowser": {"Outcome: {value}", "HTTP status: {value}", "(no response body)",
                           "Events need the profile's API key: {error}"},
        "BulkJobPanel": {"{n} failed row(s) will be sent again (with new tokens).",
                         "Skipped: it has placeholders with no value.",
                         "Every message also goes to {also}."},
        # The response log's details pane.
        "ResponseLogView": {"── Request ──", "Message id: {id}", "(no body)"},
        # The outcome and row-state words in the log, the history and the job table.
        "State": {"sent", "queued", "refused", "failed", "unknown", "pending", "sending",
                  "skipped", "cancelled", "not sent"},
        # The question before a link in a preview opens outside.
        "PreviewPane": {"Open this link in your web browser?",
                        "Write this email in your mail program?"},
    }
    for context, texts in expected.items():
        assert texts <= found[context], (context, texts - found[context])
    # A ``tr("Context", "text")`` call is read as a text with a comment, in no context.
    assert "" not in found


def test_a_loaded_translation_shows_in_the_filter_boxes(
    qtbot: Any, ts_file: Path, tmp_path: Path
) -> None:
    from netcore_desktop.ui.bulk_job import BulkJobPanel
    from netcore_desktop.ui.history_browser import HistoryBrowser
    from netcore_desktop.ui.tasks import SupportContext, TaskRunner

    wanted = {("HistoryBrowser", "any"): "alle",
              ("HistoryBrowser", "accepted (sent or queued)"): "angenommen",
              ("BulkJobPanel", "Not sent yet"): "noch nicht gesendet",
              ("State", "refused"): "abgelehnt"}
    tree = ET.parse(ts_file)
    for context in tree.getroot().iter("context"):
        for message in context.iter("message"):
            key = (context.findtext("name") or "", message.findtext("source") or "")
            translation = message.find("translation")
            if key in wanted and translation is not None:
                translation.text = wanted[key]
                translation.attrib.pop("type", None)
    ts = tmp_path / "de.ts"
    tree.write(ts, encoding="utf-8", xml_declaration=True)
    qm = tmp_path / "de.qm"
    subprocess.run([_tool("pyside6-lrelease"), str(ts), "-qm", str(qm)], check=True,
                   capture_output=True, timeout=60)
    translator = QTranslator()
    assert translator.load(str(qm))
    QCoreApplication.installTranslator(translator)
    tasks = TaskRunner(SupportContext(), name="test-i18n")
    browser = HistoryBrowser()
    panel = BulkJobPanel(tasks)
    try:
        statuses = [browser.status_filter.itemText(i) for i in range(3)]
        assert statuses[:2] == ["alle", "angenommen"]
        assert statuses[2] == "sent"  # no translation given: the English label
        rows = [panel.filter.itemText(i) for i in range(panel.filter.count())]
        assert "noch nicht gesendet" in rows and "All rows" in rows
        # The outcome word of a refused send, in the log's details pane and its filter.
        entry = LogEntry(time=datetime.now(UTC), profile="Sandbox", endpoint="/v6/mail/send",
                         status_code=400, outcome="refused", meaning="Bad request.",
                         message_id="", latency_ms=3.0, recipients=("a@example.com",))
        assert "abgelehnt" in describe_entry(entry).splitlines()[0]
        log = ResponseLogModel()
        log.add(entry)
        shown = LogFilterModel()
        shown.setSourceModel(log)
        shown.set_text("abgelehnt")
        assert shown.rowCount() == 1
    finally:
        QCoreApplication.removeTranslator(translator)
        dispose(browser)
        dispose(panel)
        tasks.shutdown()
