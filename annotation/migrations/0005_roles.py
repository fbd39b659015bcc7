"""The roles as groups: curator and researcher, with the permissions declared on
AuditEntry (annotation/roles.py says what each allows). Admins are superusers."""

from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

# Frozen here, as a migration must be; annotation/roles.py holds the live copy.
GROUP_PERMISSIONS = {
    "curator": ("curate", "download_models"),
    "researcher": ("download_datasets", "download_models", "use_research_api"),
}


def roles_create(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # Permissions are normally made after the last migration (post_migrate); make them now
    # so the groups can be given them in this one.
    config = apps.get_app_config("annotation")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="annotation", codename__in=codenames)
        )


def roles_remove(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0004_quality"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "ordering": ["-created_at", "-id"],
                "permissions": [
                    ("curate", "Can moderate listeners, judgments and tracks, retrain and promote"),
                    ("download_models", "Can download trained models"),
                    ("download_datasets", "Can download dataset releases"),
                    ("use_research_api", "Can use the research API with a token"),
                ],
            },
        ),
        migrations.RunPython(roles_create, roles_remove),
    ]
