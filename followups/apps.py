from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = "随访与预警"

    def ready(self) -> None:
        # register the outbox handlers in every process (web and worker)
        from followups import handlers  # noqa: F401
