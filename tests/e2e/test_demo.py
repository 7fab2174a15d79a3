"""The demo's pipeline end to end at a small order count, with the model emulator (fast, offline)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from local.demo import run_demo


def test_every_order_ends_done_or_failed_with_its_reason_and_the_redrive_fixes_the_fixable_one(
    capsys, tmp_path: Path
) -> None:
    result = run_demo(5, "emulator", seed=3, report_html=str(tmp_path / "report.html"))

    assert '"_aws"' not in capsys.readouterr().out  # the demo shows figures, not EMF metrics payloads

    assert result.problems() == []
    samples = result.eligible - set(result.poison)
    assert all(result.jobs[order_id][0] == "done" for order_id in samples)
    assert all(result.items[order_id] == result.truth_items[order_id] for order_id in samples)
    assert result.duplicate_items == 0
    assert not result.not_eligible & set(result.jobs)  # blank invoice_image: never enqueued

    # every poison order reached the DLQ on the first pass, with its reason in the ledger
    assert sorted(result.first_dlq_order_ids) == sorted(result.poison)
    fixable = [p.order_id for p in result.poison.values() if p.fixable]
    assert result.redriven == len(result.poison)
    for order_id, poison in result.poison.items():
        status, error = result.jobs[order_id]
        if poison.fixable:
            assert status == "done" and order_id not in result.dlq_order_ids
        else:
            assert status == "failed" and error and order_id in result.dlq_order_ids
    assert sorted(result.dlq_order_ids) == sorted(set(result.poison) - set(fixable))
    # Every done or failed commit put one completion event on the bus: a poison order failed on the first pass, and
    # again after the redrive unless it was fixed (then it has a done event too).
    done = sum(status == "done" for status, _ in result.jobs.values())
    failed_commits = len(result.poison) + len(result.poison) - len(fixable)
    assert result.events_seen == {"Invoice extraction done": done, "Invoice extraction failed": failed_commits}
    reasons = {result.poison[order_id].problem: result.jobs[order_id][1] for order_id in result.dlq_order_ids}
    assert "ALLOWED_BUCKETS" in reasons["bucket not allowed"]
    assert "MAX_IMAGE_BYTES" in reasons[next(k for k in reasons if k.startswith("larger than"))]

    # the demo ends with the comparison report, one self-contained file
    assert result.report_html == str((tmp_path / "report.html").resolve())
    html = Path(result.report_html).read_text(encoding="utf-8")
    assert result.llm in html and "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")


def test_several_models_run_side_by_side_on_the_same_orders_through_the_aws_emulators(tmp_path: Path) -> None:
    llms = ("bedrock/amazon.nova-lite-v1:0", "textract/analyze-expense")
    result = run_demo(3, "bedrock", seed=5, llms=llms, report_html=str(tmp_path / "report.html"))

    assert result.problems() == []
    samples = result.eligible - set(result.poison)
    for llm in llms:
        assert all(result.jobs_by_llm[llm][order_id][0] == "done" for order_id in samples), llm
        assert all(result.items_by_llm[llm][order_id] == result.truth_items[order_id] for order_id in samples), llm
    rows = {row["llm"]: row for row in result.report}
    assert set(rows) == set(llms)
    assert int(rows[llms[0]]["input_tokens"]) > 0 and int(rows[llms[1]]["input_tokens"]) == 0
    # Textract is priced per page (one page per sample invoice here), Bedrock per token.
    assert Decimal(rows[llms[1]]["cost_usd"]) == Decimal("0.01") * rows[llms[1]]["invoices"]


def test_the_offline_demo_compares_two_rows_one_making_mistakes_on_purpose(capsys, tmp_path: Path) -> None:
    from local.demo import demo_models
    from local.flawed_model import FLAWED_MODEL

    llms = demo_models({}, "emulator")
    result = run_demo(8, "emulator", seed=4, llms=llms, report_html=str(tmp_path / "report.html"))

    assert result.problems() == []
    printed = capsys.readouterr().out
    assert f"{FLAWED_MODEL}: NOT a real model" in printed and "misread digit 6%" in printed
    rows = {row["llm"]: row for row in result.report}
    exact, flawed = rows[llms[0]], rows[FLAWED_MODEL]
    # two models on the same orders: agreement is measured, trust and lines fully right differ
    assert exact["agreement_f1"][FLAWED_MODEL] is not None and exact["agreement_f1"][FLAWED_MODEL] < 1
    assert exact["lines_fully_right"] == 1.0 and exact["trust_reliability"]["verified"]["share_right"] == 1.0
    # the exact row's lines are doubtful only where the other model disagrees (it wrote the order first)
    assert exact["trust"]["verified"] > flawed["trust"]["verified"]
    assert flawed["lines_fully_right"] < 1.0 and flawed["trust"]["doubtful"] > 0
    assert flawed["trust_reliability"]["verified"]["share_right"] == 1.0
    html = Path(result.report_html).read_text(encoding="utf-8")
    assert FLAWED_MODEL in html and 'id="trust"' in html
