from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "机构与账号"

    def ready(self) -> None:
        from accounts import signals

        signals.connect()
