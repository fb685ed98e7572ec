from django.apps import AppConfig


class BenchusersConfig(AppConfig):
    name = "benchusers"
