"""The asynchronous half: Celery tasks. Imports models, never web (the process entry point
``tasks.celery_app`` builds the Flask app to get settings and an app context)."""
