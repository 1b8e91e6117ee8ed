"""Backfills (chalicelib/services/backfill.py) over data written as if before the list index and the report counters
existed: afterwards the list filters and the reports see every return, and running again, or the live events arriving
late, changes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from chalice.test import Client

from app import app
from chalicelib.adapters.dynamodb.keys import stored_time
from chalicelib.adapters.dynamodb.models import PointerRecord, ReturnRecord
from chalicelib.adapters.dynamodb.repository import _index_pk
from chalicelib.bootstrap import container
from chalicelib.domain.return_index import facets
from chalicelib.services.backfill import backfill
from infrastructure import cli
from infrastructure import definitions as d
from tests.integration.test_reports import deliver_reports
from tests.support import Api, drain_outbox

TODAY = datetime.now(UTC).date()
RANGE = f"from={(TODAY - timedelta(days=1)).isoformat()}&to={(TODAY + timedelta(days=1)).isoformat()}"


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    with Client(app) as client:
        yield Api(client)


def forget_read_models(aws: Any, merchant_id: str, return_ids: list[str]) -> None:
    """As before the read models existed: no list index items (and none recorded on the returns), and the events
    relayed to the bus but never counted (the reports queue emptied)."""
    c = container()
    for rid in return_ids:
        ret = c.store.get_return(rid)
        for facet in facets(ret):
            PointerRecord(pk=_index_pk(merchant_id, facet), sk=f"{stored_time(ret.created_at)}#{rid}").delete()
        rec = ReturnRecord.get(f"RETURN#{rid}", "RETURN")
        rec.details = {**(rec.details or {}), "facets": []}
        rec.save()
    drain_outbox(aws)
    boto3.client("sqs").purge_queue(QueueUrl=aws.queue_urls[d.REPORTS_QUEUE.name])


def test_backfill_restores_the_list_index_and_the_reports_once(api: Api, aws: Any) -> None:
    # Given three returns of one merchant (one received), whose list index and report counters are missing
    t = api.tenant()
    merchant_id = t["merchant"]["id"]
    returns = [api.create_return(t) for _ in range(3)]
    api.ok("POST", "/v1/warehouse/scans", t["wh_key"], {"barcode": returns[0]["tracking_number"]})
    forget_read_models(aws, merchant_id, [r["id"] for r in returns])
    assert api.ok("GET", "/v1/returns?reason=too_small", t["m_key"])["items"] == []
    assert api.ok("GET", f"/v1/reports/summary?{RANGE}", t["m_key"])["returns"] == 0
    # When the backfill runs
    done = backfill(container(), merchant_id)
    # Then every return is in the list index again, and the reports count them all
    assert done["returns"] == 3 and done["indexed"] == 3
    assert done["events"] == {"applied": 4}  # three requested, one received
    listed = api.ok("GET", "/v1/returns?reason=too_small", t["m_key"])["items"]
    assert sorted(x["id"] for x in listed) == sorted(r["id"] for r in returns)
    received = api.ok("GET", "/v1/returns?status=received&sku=SHIRT-M", t["m_key"])["items"]
    assert [x["id"] for x in received] == [returns[0]["id"]]
    summary = api.ok("GET", f"/v1/reports/summary?{RANGE}", t["m_key"])
    assert (summary["returns"], summary["items"]) == (3, 3)
    times = api.ok("GET", f"/v1/reports/processing-times?{RANGE}", t["m_key"])["stages"]
    assert times["requested_received"]["count"] == 1
    # When it runs again, nothing is written twice
    again = backfill(container(), merchant_id)
    assert again["indexed"] == 0 and again["events"] == {"duplicate": 4}
    assert api.ok("GET", f"/v1/reports/summary?{RANGE}", t["m_key"]) == summary
    # And when the live events reach the aggregator after all (a replay of the bus: the same event ids), they are
    # duplicates too
    container().events.publish([e for ret in returns for e in container().store.outbox_events(ret["id"])])
    assert deliver_reports(aws) == 4
    assert api.ok("GET", f"/v1/reports/summary?{RANGE}", t["m_key"]) == summary
    # And the operator's command line runs the same backfill (straight against the table)
    out = io.StringIO()
    assert cli.main(["backfill", merchant_id], out=out) == 0
    assert out.getvalue() == "3 returns: 0 indexed again; report events: 4 duplicate\n"


def test_backfill_of_an_unknown_merchant_is_not_found(aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib.domain.errors import NotFound

    with pytest.raises(NotFound):
        backfill(container(), "mer_nope")
    assert cli.main(["backfill", "mer_nope"], out=io.StringIO()) == 1
    assert "mer_nope" in capsys.readouterr().err
