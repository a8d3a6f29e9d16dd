from django.urls import path

from referrals.views import clues, exchange, imports, referrals, rehab

app_name = "referrals"
urlpatterns = [
    # two-way referrals (the inbox of both ends)
    path("", referrals.inbox, name="inbox"),
    path("new/", referrals.referral_create, name="create"),
    path("<uuid:pk>/", referrals.referral_detail, name="detail"),
    path("<uuid:pk>/accept/", referrals.referral_accept, name="accept"),
    path("<uuid:pk>/reject/", referrals.referral_reject, name="reject"),
    path("<uuid:pk>/complete/", referrals.referral_complete, name="complete"),
    path("<uuid:pk>/cancel/", referrals.referral_cancel, name="cancel"),
    # community rehabilitation
    path("rehab/", rehab.rehab_list, name="rehab-list"),
    path("rehab/new/", rehab.rehab_institution_create, name="rehab-create"),
    path("rehab/<int:pk>/", rehab.rehab_institution_detail, name="rehab-detail"),
    path("rehab/<int:pk>/edit/", rehab.rehab_institution_edit, name="rehab-edit"),
    path("rehab/<int:pk>/enrol/", rehab.rehab_enrol, name="rehab-enrol"),
    path("rehab/<int:pk>/sessions/new/", rehab.rehab_session_create, name="rehab-session-create"),
    path("rehab/enrolments/<uuid:pk>/end/", rehab.rehab_enrolment_end, name="rehab-enrolment-end"),
    path(
        "rehab/enrolments/<uuid:pk>/green-channel/",
        rehab.rehab_green_channel_view,
        name="rehab-green-channel",
    ),
    # clues
    path("clues/", clues.clue_list, name="clue-list"),
    path("clues/new/", clues.clue_create, name="clue-create"),
    path("clues/<uuid:pk>/", clues.clue_detail, name="clue-detail"),
    path("clues/<uuid:pk>/confirm/", clues.clue_confirm, name="clue-confirm"),
    path("clues/<uuid:pk>/close/", clues.clue_close, name="clue-close"),
    # roster import
    path("import/", imports.import_home, name="import-home"),
    path("import/template.xlsx", imports.import_template, name="import-template"),
    path("import/<uuid:pk>/", imports.import_detail, name="import-detail"),
    # exchange and reconciliation
    path("exchange/", exchange.exchange_home, name="exchange-home"),
    path("exchange/partners/new/", exchange.partner_create, name="partner-create"),
    path("exchange/partners/<int:pk>/", exchange.partner_detail, name="partner-detail"),
    path("exchange/partners/<int:pk>/edit/", exchange.partner_edit, name="partner-edit"),
    path("exchange/partners/<int:pk>/key/", exchange.partner_key, name="partner-key"),
    path("exchange/partners/<int:pk>/build/", exchange.partner_build, name="partner-build"),
    path("exchange/runs/<uuid:pk>/", exchange.run_detail, name="run-detail"),
    path("exchange/runs/<uuid:pk>/download/", exchange.run_download, name="run-download"),
    path("exchange/runs/<uuid:pk>/redeliver/", exchange.run_redeliver, name="run-redeliver"),
    path(
        "exchange/reconciliations/new/",
        exchange.reconciliation_create,
        name="reconciliation-create",
    ),
    path(
        "exchange/reconciliations/<uuid:pk>/",
        exchange.reconciliation_detail,
        name="reconciliation-detail",
    ),
    path(
        "exchange/reconciliations/<uuid:pk>/items/<int:item_pk>/review/",
        exchange.reconciliation_review,
        name="reconciliation-review",
    ),
    path(
        "exchange/reconciliations/<uuid:pk>/high-risk.xlsx",
        exchange.reconciliation_high_risk_export,
        name="reconciliation-high-risk",
    ),
    path("exchange/tasks/", exchange.task_list, name="task-list"),
    path("exchange/tasks/<uuid:pk>/resolve/", exchange.task_resolve, name="task-resolve"),
]
