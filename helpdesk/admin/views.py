"""Admin pages."""
from flask import Blueprint, render_template
from flask_login import login_required

from ..web import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/")
@login_required
@roles_required("admin")
def index():
    return render_template("admin/index.html")
