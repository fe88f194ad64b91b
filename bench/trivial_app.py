"""The ceiling for the HTTP benchmark: a Flask app that parses the same JSON body and answers
201 with a body of the command API's shape, doing nothing else. Served by bench.trivial_server
with the command API's own gunicorn settings.
"""

from __future__ import annotations

import uuid

from flask import Flask, Response, jsonify, request


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/orders")
    def place_order() -> Response:
        body = request.get_json()
        order_id = body.get("order_id") or str(uuid.uuid4())
        response = jsonify(order_id=order_id, version=1, position=0, status="PLACED")
        response.status_code = 201
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    return app
