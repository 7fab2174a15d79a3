"""Price per invoice, side by side: every provider on the same sample invoices, from its emulator's counts.

Each sample invoice (every kind: A4 tables, a tall receipt, a rotated scan, a photo, Arabic-Indic digits) goes
through each provider's own ``prepare`` and ``extract`` with its real SDK against its local emulator; tokens are
what the emulator reports (OpenAI's documented image tiling; Anthropic's documented image estimate for every Bedrock
model) and the cost is the provider's own price table (per token, or per page for Textract). Printed: mean input
and output tokens per invoice, USD per invoice and per 1,000 invoices, and the ratio to the cheapest paid row.

No database and no queue: this measures what one invoice costs, not the pipeline.

    .venv/bin/python bench/providers.py [--invoices 14]
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from invoice_pipeline import settings  # noqa: E402
from invoice_pipeline.clients import AwsClients  # noqa: E402
from invoice_pipeline.extractor import InvoiceImages  # noqa: E402
from invoice_pipeline.providers.registry import Extractors  # noqa: E402
from local.aws import patched_environment  # noqa: E402
from local.aws_emulators import BedrockEmulator, TextractEmulator  # noqa: E402
from local.model_emulator import ModelEmulator  # noqa: E402
from local.samples import KINDS, generate_invoice  # noqa: E402

MODELS = (
    "gpt-4o-2024-11-20",
    "gpt-4.1-mini",
    "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    "bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "bedrock/us.amazon.nova-pro-v1:0",
    "bedrock/us.amazon.nova-lite-v1:0",
    "textract/analyze-expense",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=2 * len(KINDS))
    args = parser.parse_args()
    samples = [generate_invoice(KINDS[n % len(KINDS)], stamp=900 + n, seed=n) for n in range(args.invoices)]
    with ExitStack() as stack:
        openai = stack.enter_context(ModelEmulator())
        bedrock = stack.enter_context(BedrockEmulator())
        textract = stack.enter_context(TextractEmulator())
        for emulator in (openai, bedrock, textract):
            for sample in samples:
                emulator.register(sample.stamp, sample.answer)
        env = {
            **bedrock.environment(),
            **textract.environment(),
            "OPENAI_BASE_URL": openai.base_url,
            "OPENAI_API_KEY": "emulator",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": "postgresql://unused@127.0.0.1/unused",
            "ALLOWED_BUCKETS": "unused",
            "LLM_MODELS": ",".join(MODELS),
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        stack.enter_context(patched_environment(env))
        consumer = settings.consumer_settings()
        extractors = Extractors(consumer, AwsClients())
        rows = []
        for model in MODELS:
            extractor = extractors.get(model)
            tokens_in = tokens_out = pages = 0
            cost = Decimal(0)
            for sample in samples:
                prepared = extractor.prepare(sample.data, source=sample.filename)
                result = extractor.extract(
                    InvoiceImages(0, 0, prepared), deadline=time.monotonic() + consumer.model_timeout_seconds
                )
                assert len(result.items) == len(sample.truth.items), (model, sample.kind)
                tokens_in += result.input_tokens
                tokens_out += result.output_tokens
                pages += len(prepared)
                cost += result.cost_usd
            rows.append((model, tokens_in / len(samples), tokens_out / len(samples), pages, cost / len(samples)))
    cheapest = min(row[4] for row in rows if row[4] > 0)
    print(f"{len(samples)} sample invoices ({', '.join(KINDS)}), every model on the same ones")
    print(f"{'model':56} {'in tok/inv':>10} {'out tok/inv':>11} {'pages':>8} {'USD/inv':>9} {'USD/1k':>8} {'ratio':>6}")
    for model, tokens_in, tokens_out, pages, per_invoice in rows:
        print(
            f"{model:56} {tokens_in:10.0f} {tokens_out:11.0f} {pages if model.startswith('textract') else '':>8} "
            f"{per_invoice:9.5f} {per_invoice * 1000:8.2f} {per_invoice / cheapest:6.1f}"
        )
    print("pages: Textract's billed pages (one call each); the LLMs get one request per invoice")
    return 0


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-providers"):
        status = main()
    raise SystemExit(status)
