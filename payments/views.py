from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from contracts.services import contract_for_party

bp = Blueprint("payments", __name__)


@bp.get("/contracts/<int:contract_id>/pay")
@login_required
def pay(contract_id: int) -> str:
    contract = contract_for_party(contract_id, current_user)
    if contract.student_id != current_user.id:
        abort(404)  # only the student pays; to anyone else the page does not exist
    return render_template("payments/pay.html", contract=contract)
