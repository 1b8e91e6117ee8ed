from __future__ import annotations

from chalice.test import Client

from app import app
from tests.support import Api


def test_lifecycle_start(aws):
    with Client(app) as client:
        api = Api(client)
        t = api.tenant()
        ret = api.create_return(t)
        assert ret["status"] == "label_created"
        print(ret)
