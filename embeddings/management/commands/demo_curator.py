"""python manage.py demo_curator : create (or reset) the demo's curator login and print it."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERNAME = "curator"


class Command(BaseCommand):
    help = "Create or reset the demo curator account with a fresh random password."

    def handle(self, *args: object, **options: object) -> None:
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=USERNAME)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Curator login: {USERNAME} / {password}  (http://127.0.0.1:8000/accounts/login/?next=/curate/)"
        )
