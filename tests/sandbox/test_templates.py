"""Templates: v6 create/list/get/update and the v5.1 lookup, and sending with one."""

from __future__ import annotations

import urllib.parse

import httpx

from netcore_desktop.sandbox import EmbeddedSandbox

from .conftest import fields, payload, v5, v6

HTML = '<html><body><p style="color:#333">Hi [%NAME%], 100% off & more</p></body></html>'


def _create(api: httpx.Client, sandbox: EmbeddedSandbox, name: str, html: str = HTML) -> int:
    response = api.post(
        "/v6/templates",
        json={"name": name, "subject": "S " + name, "html": urllib.parse.quote(html)},
        headers=v6(sandbox),
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "success"
    template_id: int = response.json()["data"]["id"]
    return template_id


def test_create_decodes_url_encoded_html(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    template_id = _create(api, sandbox, "Welcome")
    got = api.get(f"/v6/templates/{template_id}", headers=v6(sandbox))
    assert got.status_code == 200
    assert got.json()["data"]["html"] == HTML
    assert got.json()["data"]["name"] == "Welcome"


def test_create_takes_plain_html_and_form_bodies(
    sandbox: EmbeddedSandbox, api: httpx.Client
) -> None:
    plain = api.post("/v6/templates", json={"name": "Plain", "html": HTML}, headers=v6(sandbox))
    assert plain.status_code == 201
    assert plain.json()["data"]["html"] == HTML
    form = api.post(
        "/v6/templates", data={"name": "Form", "html": HTML}, headers=v6(sandbox)
    )
    assert form.status_code == 201
    assert form.json()["data"]["html"] == HTML


def test_create_needs_a_name_and_html(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.post("/v6/templates", json={"html": HTML}, headers=v6(sandbox))
    assert response.status_code == 400 and fields(response) == ["name"]
    response = api.post("/v6/templates", json={"name": "x"}, headers=v6(sandbox))
    assert response.status_code == 400 and fields(response) == ["html"]
    assert api.post("/v6/templates", json={"name": "x", "html": HTML}).status_code == 401


def test_list_is_paged(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    ids = [_create(api, sandbox, f"T{i}") for i in range(5)]
    page = api.get("/v6/templates", params={"page": 2, "per_page": 2}, headers=v6(sandbox))
    data = page.json()["data"]
    assert data["total"] == 5 and data["page"] == 2 and data["per_page"] == 2
    assert [t["id"] for t in data["templates"]] == ids[2:4]
    assert "html" not in data["templates"][0]
    bad = api.get("/v6/templates", params={"per_page": 0}, headers=v6(sandbox))
    assert bad.status_code == 400 and fields(bad) == ["per_page"]


def test_update_changes_only_what_is_given(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    template_id = _create(api, sandbox, "Old")
    response = api.put(
        f"/v6/templates/{template_id}", json={"name": "New"}, headers=v6(sandbox)
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["name"] == "New" and data["html"] == HTML and data["subject"] == "S Old"
    missing = api.put("/v6/templates/999", json={"name": "x"}, headers=v6(sandbox))
    assert missing.status_code == 404 and fields(missing) == ["template_id"]


def test_unknown_template_is_404(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    response = api.get("/v6/templates/12345", headers=v6(sandbox))
    assert response.status_code == 404
    assert fields(response) == ["template_id"]


def test_v51_template_lookup(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    template_id = _create(api, sandbox, "Legacy")
    got = api.get("/v5.1/template", params={"template_id": template_id}, headers=v5(sandbox))
    assert got.status_code == 200 and got.json()["data"]["html"] == HTML
    bad = api.get("/v5.1/template", params={"template_id": "abc"}, headers=v5(sandbox))
    assert bad.status_code == 400 and fields(bad) == ["template_id"]


def test_send_with_a_stored_template(sandbox: EmbeddedSandbox, api: httpx.Client) -> None:
    template_id = _create(api, sandbox, "Invoice")
    body = payload(template_id=template_id)
    del body["content"]
    response = api.post("/v6/mail/send", json=body, headers=v6(sandbox))
    assert response.status_code == 200, response.text
