"""Demo people and an integration token for a development machine."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

# Development-only credentials, printed on every `make run`.
DEMO_ACCOUNTS = (
    # username, password, group, is_staff, is_superuser
    ("pm", "pm-demo-pass", "Product managers", True, False),
    ("exec", "exec-demo-pass", "Executives", True, False),
    ("admin", "admin-demo-pass", None, True, True),
    ("integration", None, "Integrations", False, False),
)


class Command(BaseCommand):
    help = "Create the demo product manager, executive, admin and integration accounts."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="create them even with DEBUG off")

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("Demo accounts have known passwords; refusing with DEBUG off.")
        User = get_user_model()
        lines = []
        for username, password, group_name, is_staff, is_superuser in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser = is_staff, is_superuser
            if password:
                user.set_password(password)
            else:
                user.set_unusable_password()
            user.save()
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
            if password:
                role = group_name or "superuser"
                lines.append(f"  {role:<18} {username:<12} password: {password}")
            else:
                token, _ = Token.objects.get_or_create(user=user)
                lines.append(f"  {group_name:<18} {username:<12} API token: {token.key}")
        self.stdout.write("Demo accounts (development only):")
        for line in lines:
            self.stdout.write(line)
