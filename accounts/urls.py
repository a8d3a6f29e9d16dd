from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("no-role/", views.no_role, name="no-role"),
    path("password/", views.password_change, name="password-change"),
    path("mfa/setup/", views.mfa_setup, name="mfa-setup"),
    path("mfa/verify/", views.mfa_verify, name="mfa-verify"),
    path("staff/", views.staff_list, name="staff-list"),
    path("staff/new/", views.staff_create, name="staff-create"),
    path("staff/<int:pk>/", views.staff_detail, name="staff-detail"),
    path("staff/<int:pk>/change/", views.staff_change, name="staff-change"),
    path("staff/<int:pk>/password/", views.staff_password_reset, name="staff-password-reset"),
    path("staff/<int:pk>/deactivate/", views.staff_deactivate, name="staff-deactivate"),
    path("staff/<int:pk>/reactivate/", views.staff_reactivate, name="staff-reactivate"),
    path("staff/<int:pk>/export/", views.staff_export, name="staff-export"),
    path("staff/<int:pk>/mfa-reset/", views.staff_mfa_reset, name="staff-mfa-reset"),
    path("requests/", views.account_request_list, name="account-request-list"),
    path(
        "requests/<int:pk>/approve/",
        views.account_request_approve,
        name="account-request-approve",
    ),
    path("requests/<int:pk>/reject/", views.account_request_reject, name="account-request-reject"),
    path("lockouts/", views.lockout_list, name="lockout-list"),
    path("lockouts/unlock/", views.lockout_release, name="lockout-release"),
    path("api-keys/", views.apikey_list, name="apikey-list"),
    path("api-keys/<int:pk>/revoke/", views.apikey_revoke, name="apikey-revoke"),
    path("api-keys/<int:pk>/approve/", views.apikey_approve, name="apikey-approve"),
    path("api-keys/<int:pk>/reject/", views.apikey_reject, name="apikey-reject"),
    path("api-keys/mine/", views.apikey_mine, name="apikey-mine"),
    path("api-keys/mine/<int:pk>/collect/", views.apikey_collect, name="apikey-collect"),
    path("break-glass/", views.breakglass_request, name="breakglass-request"),
]
