from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "核心"

    def ready(self):
        from django.core.signals import got_request_exception

        from core.middleware import note_database_error

        got_request_exception.connect(note_database_error, dispatch_uid="core.database_error")
