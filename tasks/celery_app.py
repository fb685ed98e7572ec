"""Process entry point of the ``celery`` command: ``celery -A tasks.celery_app worker``."""

from web import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
app = celery_app
