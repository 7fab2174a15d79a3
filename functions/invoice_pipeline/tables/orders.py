"""The ``orders`` table: it belongs to the ordering application, which we only read (and index on request).

Owns every statement on ``orders``: one order's ``invoice_image`` (the consumer), the eligibility predicate and
the keyset page of eligible orders (the producer's run, composed with the ledger claim in
:mod:`invoice_pipeline.tables.ledger`), and the index ``invoices index-orders`` creates for that page.
"""

from __future__ import annotations

from invoice_pipeline.errors import OrderNotFound
from invoice_pipeline.tables.db import Connection

SELECT_INVOICE_IMAGE = "SELECT invoice_image FROM orders WHERE id = :order_id"

# "Blank" (docs/architecture.md §4) is empty or whitespace of any kind: exactly the characters Python's str.isspace()
# accepts, spelled out because Postgres' [[:space:]] only knows ASCII in the C locale. A value with any other
# character is eligible. The index predicate repeats this text verbatim so the planner can match it.
NOT_BLANK_PATTERN = r"[^\s\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
ORDER_HAS_IMAGE = f"o.invoice_image ~ '{NOT_BLANK_PATTERN}'"

# Keyset start: before every real (created_at, id).
FIRST_KEY: tuple[str, int] = ("-infinity", -(2**63))
NO_LOWER_BOUND = "-infinity"

# One page of eligible orders after the key (:after_created_at, :after_id), oldest first: the order of the
# index below, so a page is one ordered index range scan (no sort, no OFFSET). {restaurant_filter} is one of
# the two fixed fragments below (separate statements so each gets its own plan). Orders without a restaurant
# belong to none: `*` does not select them either.
_ELIGIBLE_PAGE = """
    SELECT o.id, o.created_at
    FROM orders AS o
    WHERE {restaurant_filter}
      AND (o.created_at, o.id) > (CAST(:after_created_at AS timestamptz), CAST(:after_id AS bigint))
      AND o.created_at >= CAST(:orders_since AS timestamptz)
      AND {order_has_image}
    ORDER BY o.created_at, o.id
    LIMIT CAST(:page_size AS integer)
"""
ELIGIBLE_PAGE_ALL_RESTAURANTS = _ELIGIBLE_PAGE.format(
    restaurant_filter="o.restaurant_id IS NOT NULL", order_has_image=ORDER_HAS_IMAGE
)
ELIGIBLE_PAGE_LISTED_RESTAURANTS = _ELIGIBLE_PAGE.format(
    restaurant_filter="o.restaurant_id = ANY(CAST(:restaurant_ids AS bigint[]))", order_has_image=ORDER_HAS_IMAGE
)

# The priority lane (docs/events-and-lanes.md): an order of the page `p` is urgent when this holds, and the
# producer then sends it to PRIORITY_QUEUE_URL. The default is "created within the last PRIORITY_WINDOW_MINUTES".
# To follow a flag of the ordering application instead (say `orders.is_rush`), select that column in
# _ELIGIBLE_PAGE above and make this expression `p.is_rush`; the producer's first pass over recent orders
# (enqueue.py) then only finds them sooner, every page routes by this expression.
URGENT_ORDER = "p.created_at >= now() - make_interval(mins => CAST(:priority_window_minutes AS integer))"

# The orders named by an on-demand request, in the request's order: whether each exists and has an image.
REQUESTED_ORDERS = f"""
    SELECT r.order_id, r.position, o.id IS NOT NULL AS found, coalesce({ORDER_HAS_IMAGE}, false) AS has_image
    FROM unnest(CAST(:order_ids AS bigint[])) WITH ORDINALITY AS r(order_id, position)
    LEFT JOIN orders AS o ON o.id = r.order_id
"""

ORDERS_INDEX_NAME = "orders_created_at_id_invoice_idx"
# CONCURRENTLY: the ordering application keeps writing while the index builds. Partial: blank images (a
# large share of real orders) are never read. Keyed on the page order; INCLUDE (restaurant_id) lets the
# restaurant filter be checked on the index entry (index-only scan), without visiting the table.
CREATE_ORDERS_INDEX = f"""
CREATE INDEX CONCURRENTLY IF NOT EXISTS {ORDERS_INDEX_NAME}
ON orders (created_at, id) INCLUDE (restaurant_id)
WHERE invoice_image ~ '{NOT_BLANK_PATTERN}'
"""
# The comparison's filter on the orders `o` (each bound parameter NULL: no filter; :before is exclusive).
ORDERS_OF_RESTAURANTS_AND_DAYS = """
      (CAST(:restaurant_ids AS bigint[]) IS NULL OR o.restaurant_id = ANY(CAST(:restaurant_ids AS bigint[])))
  AND (CAST(:since AS date) IS NULL OR o.created_at >= CAST(:since AS date))
  AND (CAST(:before AS date) IS NULL OR o.created_at < CAST(:before AS date))
"""
RESTAURANTS_SQL = "SELECT DISTINCT restaurant_id FROM orders WHERE restaurant_id IS NOT NULL ORDER BY 1"
ORDERS_TABLE_EXISTS = "SELECT to_regclass('public.orders') IS NOT NULL"

# A failed CONCURRENTLY build leaves an INVALID index behind, which IF NOT EXISTS would then keep forever.
ORDERS_INDEX_IS_VALID = "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"
DROP_INVALID_ORDERS_INDEX = f"DROP INDEX CONCURRENTLY IF EXISTS {ORDERS_INDEX_NAME}"


def read_invoice_image(connection: Connection, order_id: int) -> str | None:
    """The order's ``invoice_image`` (may be NULL or blank); :class:`OrderNotFound` when there is no such order."""
    rows = connection.run(SELECT_INVOICE_IMAGE, order_id=order_id)
    if not rows:
        raise OrderNotFound()
    value: str | None = rows[0][0]
    return value


def create_orders_index(connection: Connection) -> str:
    """``invoices index-orders``: build the producer's index on ``orders`` without blocking writers.

    Returns what happened: "created", "exists" or "rebuilt" (an invalid leftover of a failed build).
    """
    state = connection.run(ORDERS_INDEX_IS_VALID, name=ORDERS_INDEX_NAME)
    if state and state[0][0]:
        return "exists"
    if state:
        connection.run(DROP_INVALID_ORDERS_INDEX)
    connection.run(CREATE_ORDERS_INDEX)
    return "rebuilt" if state else "created"


def restaurants(connection: Connection) -> list[int]:
    """Every restaurant with an order (none when the ordering app's table is absent, as it may be locally)."""
    if not connection.run(ORDERS_TABLE_EXISTS)[0][0]:
        return []
    return [int(row[0]) for row in connection.run(RESTAURANTS_SQL)]
