"""/ServiceProviderConfig, /Schemas and /ResourceTypes, from the definitions the code uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app

from web.scim import definitions as d
from web.scim.errors import NotFound
from web.scim.listing import list_response

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
DOCS_URL = "https://docs.workteam.example/scim"


def _base(org_id: object) -> str:
    return f"{current_app.config['PUBLIC_URL']}/scim/v2/{org_id}"


def service_provider_config(config: Mapping[str, Any], org_id: object) -> dict:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": DOCS_URL,
        "patch": {"supported": True},
        "bulk": {
            "supported": bool(config.get("SCIM_BULK_SUPPORTED", False)),
            "maxOperations": config.get("SCIM_BULK_MAX_OPERATIONS", 0),
            "maxPayloadSize": config.get("SCIM_BULK_MAX_PAYLOAD", 0),
        },
        "filter": {"supported": True, "maxResults": config["SCIM_MAX_PAGE_SIZE"]},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": "index",
            "defaultPageSize": config["SCIM_DEFAULT_PAGE_SIZE"],
            "maxPageSize": config["SCIM_MAX_PAGE_SIZE"],
            "cursorTimeout": config.get("SCIM_CURSOR_TIMEOUT", 3600),
        },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The bearer token generated in Organization Settings > "
                "Integrations > SCIM User Provisioning.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "documentationUri": DOCS_URL,
                "primary": True,
            }
        ],
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{_base(org_id)}/ServiceProviderConfig",
        },
    }


def schemas_list(org_id: object) -> dict:
    return list_response([s.to_scim(_base(org_id)) for s in d.ALL_SCHEMAS])


def schema(org_id: object, schema_id: str) -> dict:
    for s in d.ALL_SCHEMAS:
        if s.id.lower() == schema_id.lower():
            return s.to_scim(_base(org_id))
    raise NotFound(f"Schema {schema_id} not found")


def resource_types_list(org_id: object) -> dict:
    return list_response([t.to_scim(_base(org_id)) for t in d.RESOURCE_TYPES.values()])


def resource_type(org_id: object, name: str) -> dict:
    for t in d.RESOURCE_TYPES.values():
        if t.name.lower() == name.lower():
            return t.to_scim(_base(org_id))
    raise NotFound(f"ResourceType {name} not found")
