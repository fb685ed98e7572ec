"""Bearer-token authentication: a request with the token acts as the SCIM client user.

The token is compared in constant time with BENCH_TOKEN, as the ceiling and scim2-server
do; no database query is spent on it.
"""

import hmac

from django.conf import settings


class ScimClient:
    """The authenticated SCIM client; django-scim2 only asks whether it is authenticated."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None


class Anonymous:
    is_authenticated = False
    is_anonymous = True


class BearerTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.token = settings.BENCH_TOKEN.encode()

    def __call__(self, request):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        ok = scheme.lower() == "bearer" and bool(self.token)
        ok = ok and hmac.compare_digest(token.encode(), self.token)
        request.user = ScimClient() if ok else Anonymous()
        return self.get_response(request)
