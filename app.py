"""Boomerang API: builds the Chalice app, registers blueprints and middleware. Nothing else."""

from __future__ import annotations

from chalice.app import Chalice

from chalicelib.api import admin, merchant, meta, portal, warehouse, webhooks

app = Chalice(app_name="boomerang")
app.api.binary_types = ["application/pdf"]

for blueprint in (meta.bp, admin.bp, merchant.bp, portal.bp, warehouse.bp, webhooks.bp):
    app.register_blueprint(blueprint)
