-- Ground truth for accuracy reports (known line items of sample or hand-checked invoices), and the
-- arithmetic-validation warnings of each extracted order in the ledger.

CREATE TABLE IF NOT EXISTS benchmarking.ground_truth_items (
    order_id bigint NOT NULL,
    invoice_index integer NOT NULL CHECK (invoice_index >= 0),
    line_no integer NOT NULL CHECK (line_no >= 1),
    item_name text,
    qty numeric,
    uom text,
    unit_price numeric,
    net_price numeric,
    currency text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, invoice_index, line_no)
);

-- A JSON array of {"code", "invoice_index", "line_no", "message"} objects; NULL when not validated.
ALTER TABLE benchmarking.extraction_jobs ADD COLUMN IF NOT EXISTS warnings jsonb;
