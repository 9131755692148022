"""The login page's answer once django-axes has locked an account or an
address out (`AXES_LOCKOUT_CALLABLE`): the same page, 429, saying why and for
how long; the right password is refused too until the cool-off has passed.
Axes counts the failures and decides; this only renders its decision."""

from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def cooloff_minutes() -> int:
    return max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))


def locked_out(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    form = AuthenticationForm(request, initial={"username": username})
    context = {
        "form": form,
        "next": request.POST.get("next", request.GET.get("next", "")),
        "locked_out": True,
        "cooloff_minutes": cooloff_minutes(),
    }
    return render(request, "registration/login.html", context, status=429)
