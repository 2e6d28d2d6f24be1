"""Extensions, created unbound and bound to the app in `create_app`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask_bootstrap import Bootstrap5
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_mailman import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Constraint names are fixed so that SQLite and PostgreSQL carry the same ones
# and migrations can refer to them by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
bootstrap = Bootstrap5()

# Models subclass `Model`: Flask-SQLAlchemy's `db.Model` at run time, our typed
# declarative base for the type checker (which cannot see through `db.Model`).
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
