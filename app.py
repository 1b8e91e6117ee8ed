"""Boomerang API: builds the Chalice app, registers blueprints and middleware. Nothing else."""

from __future__ import annotations

from chalice.app import Chalice

from chalicelib.api import admin, exports, merchant, meta, portal, privacy, reports, warehouse, webhooks
from chalicelib.api import subscriptions as webhook_subscriptions

app = Chalice(app_name="boomerang")
app.api.binary_types = ["application/pdf"]

for blueprint in (meta.bp, admin.bp, merchant.bp, portal.bp, warehouse.bp, webhooks.bp, exports.bp, reports.bp):
    app.register_blueprint(blueprint)
app.register_blueprint(webhook_subscriptions.bp)
app.register_blueprint(privacy.bp)
