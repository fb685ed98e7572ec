"""Settings of the minimal django-scim2 project: PostgreSQL, a bearer token, nothing else.

Environment: BENCH_DATABASE_URL (postgresql://user@host:port/name), BENCH_TOKEN.
"""

import os
from urllib.parse import urlsplit

_db = urlsplit(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/bench_django"))

SECRET_KEY = os.environ.get("BENCH_DJANGO_SECRET_KEY", "bench-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_scim",
    "benchusers",
]
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "benchusers.middleware.BearerTokenMiddleware",
]
ROOT_URLCONF = "benchproj.urls"
WSGI_APPLICATION = "benchproj.wsgi.application"
AUTH_USER_MODEL = "benchusers.User"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": str(_db.port or 5432),
        # Persistent connections, as a production deployment would configure them.
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
# The cheapest hasher: no password is sent by the benchmark, this only avoids surprises.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
BENCH_TOKEN = os.environ.get("BENCH_TOKEN", "")
SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "SCHEME": "http",
    "GROUP_MODEL": "benchusers.models.Group",
    "AUTHENTICATION_SCHEMES": [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
        },
    ],
    "WWW_AUTHENTICATE_HEADER": 'Bearer realm="django-scim2"',
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
