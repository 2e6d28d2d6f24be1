"""Entry point for gunicorn: `gunicorn wsgi:app`. A web process never migrates (`flask db
upgrade` does, before it starts), so it is built without Alembic."""

from app import create_app

app = create_app(migrations=False)
