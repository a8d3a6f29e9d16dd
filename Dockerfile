FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 1000 app
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
# collectstatic needs settings but no secrets or database: use the base settings.
# (translations are committed compiled: locale/*/LC_MESSAGES/django.mo)
RUN DJANGO_SETTINGS_MODULE=config.settings.base python manage.py collectstatic --no-input \
    && mkdir -p /app/var/audit-checkpoints && chown -R app:app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "python:config.gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]
