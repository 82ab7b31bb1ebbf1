"""Every corpus package either runs to completion or is refused before anything runs.

A package whose executables are all supported runs through the real executor, with every SMTP
connection redirected to a loopback sink, and must end with a result and a report (Failure is a
legitimate end: many corpus packages point at Windows folders that do not exist here, and must
say so in one sentence). A package with unsupported executables is refused by the planner with
every problem listed, each naming its file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dtsx.connections.base import Redirect, mail_sink_redirect
from dtsx.mailsink import MailSink
from dtsx.engine.errors import PackageLoadError, PackageValidationError
from dtsx.engine.executor import RunOptions, run
from dtsx.engine.loader import load
from dtsx.engine.plan import build
from tests._shared import shared_dir

CORPUS = (shared_dir() or Path("/nonexistent")) / "corpus" / "dtsx"
PACKAGES = sorted(CORPUS.glob("*.dtsx")) if CORPUS.is_dir() else []
RESULTS = {"Success", "Failure", "Completion", "Canceled", "NotRun"}
REFUSALS = {"unsupported-task", "unsupported-enumerator", "invalid-task", "missing-connection"}


def _redirect(sink: MailSink) -> Redirect:
    return mail_sink_redirect("127.0.0.1", sink.port)


@pytest.mark.skipif(
    not PACKAGES, reason="the shared corpus is absent: set DTSX_SHARED or place it at ../shared"
)
@pytest.mark.parametrize("path", PACKAGES, ids=lambda p: p.name[:60])
def test_corpus_package_runs_to_completion_or_is_refused(path: Path, mail_sink: MailSink) -> None:
    try:
        package = load(path)
    except PackageLoadError as exc:
        assert "encrypted" in str(exc), str(exc)  # only the two whole-file encrypted packages
        return
    try:
        plan = build(package)
    except PackageValidationError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.code in REFUSALS, str(problem)
            assert problem.file == str(path) and problem.line, str(problem)
        return
    result = run(plan, RunOptions(connection_redirect=_redirect(mail_sink)))
    report = result.to_json()
    json.dumps(report)  # the report is plain JSON
    assert report["result"] in {"Success", "Failure"}
    assert report["exit_code"] == (0 if report["result"] == "Success" else 1)
    failed_with_errors = [
        exe["ref_id"]
        for exe in report["executables"]
        if exe["result"] == "Failure" and exe["errors"]
    ]
    for exe in report["executables"]:
        assert exe["result"] in RESULTS
        if exe["result"] == "Failure":
            # A container fails with no error of its own when a child failed with one (SSIS: the
            # child's OnError is the error); anything else that fails says why.
            inside = exe["ref_id"] + "\\"
            assert exe["errors"] or any(ref.startswith(inside) for ref in failed_with_errors), exe
        for error in exe["errors"]:
            assert "Traceback" not in error and error.strip().endswith((".", ")")), error


@pytest.mark.skipif(
    not PACKAGES, reason="the shared corpus is absent: set DTSX_SHARED or place it at ../shared"
)
def test_some_corpus_packages_run_and_mail_reaches_the_sink(mail_sink: MailSink) -> None:
    # The Chapter 3 Send Mail package is fully supported: it must succeed and deliver one message.
    path = CORPUS / "lucmilot_SSIS_2014_Book_850879_c03_download_Chapter3_SendMailTask.dtsx"
    result = run(build(load(path)), RunOptions(connection_redirect=_redirect(mail_sink)))
    assert result.to_json()["result"] == "Success"
    assert len(mail_sink.messages()) == 1
