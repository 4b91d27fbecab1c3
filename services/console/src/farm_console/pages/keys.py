"""Keys and tenant: the tenant's limits, its API keys, creating (secret shown once) and revoking."""

from datetime import UTC, datetime

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from farm.auth.v1 import auth_pb2
from farm_console.farm import FarmError, Json
from farm_console.forms import FormError, Refusal, entered, form_status, refusal, whole_number
from farm_console.once import FormTokens
from farm_console.views import caller, go_to, render
from farm_core import idempotency

SCOPES = ["tasks.write", "tasks.read", "script", "sessions", "artifacts.read", "admin"]
FORM_FIELDS = {name: name for name in ("name", "scopes", "tenant", "ttlSeconds")}
LIMIT_NAMES = [field.json_name for field in auth_pb2.TenantLimits.DESCRIPTOR.fields]
CREATE_FORMS = FormTokens("create-key")
"""The create form's one-time tokens: a reload of the page showing a new secret creates nothing."""


def _repeated(refused: FarmError) -> bool:
    """Whether CreateApiKey refused the form because its token's nonce made a key already."""
    # The same form again is ALREADY_EXISTS; the form used and then changed (back,
    # edit, submit) is INVALID_ARGUMENT naming idempotencyKey. Either made its key then.
    return refused.code == grpc.StatusCode.ALREADY_EXISTS or (
        refused.code == grpc.StatusCode.INVALID_ARGUMENT
        and refused.message.startswith(f"{idempotency.FIELD}:")
    )


def expired_keys(keys: list[Json], now: datetime) -> set[str]:
    """The ids of `keys` whose expireTime has passed: the farm refuses them now."""
    return {
        key["id"]
        for key in keys
        if key.get("expireTime") and datetime.fromisoformat(key["expireTime"]) <= now
    }


def limits_shown(tenant: Json) -> list[tuple[str, str]]:
    """Each of the tenant's limits in force, by name; 0 (left out of the JSON) is unlimited."""
    effective = tenant.get("effectiveLimits") or {}
    shown = [(name, str(effective.get(name, 0))) for name in LIMIT_NAMES]
    return [(name, "unlimited" if value == "0" else value) for name, value in shown]


async def _page(
    request: Request,
    created: Json | None = None,
    error: Refusal | None = None,
    form: dict[str, str] | None = None,
    chosen_scopes: list[str] | None = None,
    repeated: bool = False,
    status_code: int = 200,
) -> Response:
    user = caller(request)
    me = await user.farm.call(user.key, user.farm.auth.WhoAmI, auth_pb2.WhoAmIRequest())
    tenant = await user.farm.call(
        user.key, user.farm.auth.GetTenant, auth_pb2.GetTenantRequest(name=me["tenant"])
    )
    listing = await user.farm.call(
        user.key, user.farm.auth.ListApiKeys, auth_pb2.ListApiKeysRequest()
    )
    keys = listing.get("apiKeys", [])
    return render(
        request,
        "keys.html",
        409 if repeated else status_code,
        me=me,
        tenant=tenant,
        limits=limits_shown(tenant),
        keys=keys,
        expired=expired_keys(keys, datetime.now(UTC)),
        scopes=SCOPES,
        created=created,
        error=error,
        form=form or {},
        chosen_scopes=chosen_scopes or [],
        repeated=repeated,
        form_token=CREATE_FORMS.make(user.key),
    )


async def keys_page(request: Request) -> Response:
    """The tenant's limits and keys, with the form for a new key."""
    return await _page(request)


async def create_key(request: Request) -> Response:
    """CreateApiKey; the page again, showing the new secret this once.

    The form's one-time token's nonce is the call's idempotency key, so a second
    submission of the same form (a reload), on any replica, creates nothing: auth
    refuses it, and the page says the key was already created.
    """
    user = caller(request)
    form = await request.form()
    nonce = CREATE_FORMS.nonce(user.key, str(form.get("formToken", "")))
    scopes = [str(scope) for scope in form.getlist("scopes")]
    try:
        create = auth_pb2.CreateApiKeyRequest(
            name=str(form.get("name", "")).strip(),
            scopes=scopes,
            tenant=str(form.get("tenant", "")).strip(),
            ttl_seconds=whole_number(str(form.get("ttlSeconds", "")), "ttlSeconds") or 0,
            idempotency_key=nonce or "",
        )
        if nonce is None:
            raise FormError("formToken", "the form is out of date: fill it in and submit it again")
        created = await user.farm.call(user.key, user.farm.auth.CreateApiKey, create)
    except (FormError, FarmError) as refused:
        if isinstance(refused, FarmError) and _repeated(refused):
            return await _page(request, repeated=True)
        # A refused call made no key: the same token stays good for the corrected form.
        message = refused.message if isinstance(refused, FarmError) else str(refused)
        return await _page(
            request,
            error=refusal(message, FORM_FIELDS),
            form=entered(form),
            chosen_scopes=scopes,
            status_code=form_status(refused),
        )
    return await _page(request, created=created)


async def revoke_key(request: Request) -> Response:
    """RevokeApiKey; back to the list."""
    user = caller(request)
    request_ = auth_pb2.RevokeApiKeyRequest(id=request.path_params["key_id"])
    await user.farm.call(user.key, user.farm.auth.RevokeApiKey, request_)
    return go_to(request, "/keys")


routes = [
    Route("/keys", keys_page, methods=["GET"]),
    Route("/keys", create_key, methods=["POST"]),
    Route("/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
]
