from django.urls import path

from subsidies import views

app_name = "subsidies"
urlpatterns = [
    # guardian reward (以奖代补)
    path("", views.home, name="home"),
    path("awards/", views.award_list, name="award-list"),
    path("awards/candidates/", views.award_candidates, name="award-candidates"),
    path("awards/apply/<uuid:patient_id>/", views.award_apply, name="award-apply"),
    path("awards/<int:pk>/", views.award_detail, name="award-detail"),
    path("awards/<int:pk>/review/", views.award_township_review, name="award-review"),
    path("awards/<int:pk>/approve/", views.award_county_decide, name="award-approve"),
    path("awards/<int:pk>/objection/", views.award_objection, name="award-objection"),
    path("awards/<int:pk>/yearly-review/", views.award_yearly_review, name="award-yearly-review"),
    path("awards/<int:pk>/suspend/", views.award_suspend, name="award-suspend"),
    path("awards/<int:pk>/end/", views.award_end, name="award-end"),
    path("batches/", views.batch_list, name="batch-list"),
    path("batches/draw/", views.batch_draw, name="batch-draw"),
    path("batches/<int:pk>/", views.batch_detail, name="batch-detail"),
    path("batches/<int:pk>/review/", views.batch_review, name="batch-review"),
    path("batches/<int:pk>/pay/", views.batch_pay, name="batch-pay"),
    path("batches/<int:pk>/export.xlsx", views.batch_export, name="batch-export"),
    # hospital episodes and one-stop settlement (一站式结算)
    path("settlements/", views.settlement_list, name="settlement-list"),
    path("settlements/<int:pk>/", views.settlement_detail, name="settlement-detail"),
    path("settlements/<int:pk>/reverse/", views.settlement_reverse, name="settlement-reverse"),
    path("episodes/new/", views.episode_new, name="episode-new"),
    path("episodes/new/<uuid:patient_id>/", views.episode_admit, name="episode-admit"),
    path("episodes/<int:pk>/", views.episode_detail, name="episode-detail"),
    path("episodes/<int:pk>/discharge/", views.episode_discharge, name="episode-discharge"),
    path("episodes/<int:pk>/settle/", views.episode_settle, name="episode-settle"),
    path("statements/", views.statement, name="statement"),
    path("statements/export.xlsx", views.statement_export, name="statement-export"),
]
