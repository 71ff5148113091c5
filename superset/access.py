"""Serve layer: roles, users, dashboard access and row-level security from `superset/roles.yaml`.

`stackctl.superset_service.up()` calls `apply_access()` after importing the assets, because what the file names
(dashboards by slug, datasets by `schema.table`) only gets ids once the assets exist in the
metadata DB. Everything goes through the REST API (FAB's security API, enabled by
`FAB_ADD_SECURITY_API`, and Superset's dashboard and row-level-security APIs) and is idempotent:

- a role is created if missing and its permissions are *set* to the file's list, plus access to
  the whole of each database in its `databases`, plus the current permissions of its `base_roles`
  (so a Superset upgrade's new permissions for Gamma reach the Analyst at the next `make run`);
- a dashboard's roles are set to the roles that list it (DASHBOARD_RBAC);
- a user is created or updated (roles, name, password from the environment);
- a row-level-security rule is created or updated by name.

Roles, users and rules that are not in the file are left alone (an admin may add their own).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

HERE = Path(__file__).resolve().parent
ROLES_FILE = HERE / "roles.yaml"

Log = Callable[[str], None]


class AccessError(RuntimeError):
    """The roles file is invalid, names something that does not exist, or Superset refused a change."""


class Client(Protocol):
    """What `provision.SupersetClient` offers (a logged-in admin session)."""

    def get(self, path: str, **params: Any) -> dict[str, Any]: ...

    def post(self, path: str, **kwargs: Any) -> Any: ...

    def put(self, path: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RlsRule:
    name: str
    tables: tuple[str, ...]
    clause: str
    description: str = ""


@dataclass(frozen=True)
class RoleSpec:
    name: str
    permissions: tuple[tuple[str, str], ...] = ()
    base_roles: tuple[str, ...] = ()
    dashboards: tuple[str, ...] | None = None  # None: no dashboard; ("*",): all of them
    databases: tuple[str, ...] = ()  # database names, read in full (database_access)
    row_level_security: tuple[RlsRule, ...] = ()


@dataclass(frozen=True)
class UserSpec:
    username: str
    user_env: str
    password_env: str
    roles: tuple[str, ...]
    first_name: str
    last_name: str

    def login(self) -> str:
        return os.environ.get(self.user_env, "").strip() or self.username

    def password(self) -> str:
        value = os.environ.get(self.password_env, "").strip()
        if not value:
            raise AccessError(f"{self.password_env} is not set: generate credentials into .env (`make env`)")
        return value


@dataclass(frozen=True)
class AccessSpec:
    roles: dict[str, RoleSpec]
    users: tuple[UserSpec, ...]


def load_spec(path: Path = ROLES_FILE) -> AccessSpec:
    """Parse and check the roles file (no server needed)."""
    doc = yaml.safe_load(path.read_text()) or {}
    roles: dict[str, RoleSpec] = {}
    for name, body in (doc.get("roles") or {}).items():
        body = body or {}
        dashboards = body.get("dashboards")
        rules = tuple(
            RlsRule(
                name=str(rule["name"]),
                tables=tuple(rule["tables"]),
                clause=str(rule["clause"]),
                description=str(rule.get("description", "")),
            )
            for rule in body.get("row_level_security") or []
        )
        for rule in rules:
            if not rule.tables or any(table.count(".") != 1 for table in rule.tables):
                raise AccessError(f"{path.name}: rule {rule.name!r} must list tables as schema.table")
        roles[str(name)] = RoleSpec(
            name=str(name),
            permissions=tuple((str(perm), str(view)) for perm, view in body.get("permissions") or []),
            base_roles=tuple(body.get("base_roles") or ()),
            dashboards=("*",) if dashboards == "all" else (tuple(dashboards) if dashboards else None),
            databases=tuple(str(name) for name in body.get("databases") or ()),
            row_level_security=rules,
        )
    users = tuple(
        UserSpec(
            username=str(user["username"]),
            user_env=str(user["user_env"]),
            password_env=str(user["password_env"]),
            roles=tuple(user["roles"]),
            first_name=str(user.get("first_name", user["username"])),
            last_name=str(user.get("last_name", "")),
        )
        for user in doc.get("users") or []
    )
    for user in users:
        unknown = [role for role in user.roles if role not in roles and role not in {"Admin", "Gamma", "sql_lab"}]
        if unknown:
            raise AccessError(f"{path.name}: user {user.username!r} has undefined roles {unknown}")
    return AccessSpec(roles, users)


# --- REST helpers ---------------------------------------------------------------------------------


def _paged(client: Client, path: str, columns: str = "", order: str = "") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 0
    while True:
        select = f"columns:!({columns})," if columns else ""
        # Pages need a stable order: on PostgreSQL metadata (cluster mode) an unordered
        # LIMIT/OFFSET repeats some rows and skips others (SQLite happens to return rowid order).
        select += f"order_column:{order},order_direction:asc," if order else ""
        result = client.get(path, q=f"({select}page:{page},page_size:100)")["result"]
        rows.extend(result)
        if len(result) < 100:
            return rows
        page += 1


def _check(response: Any, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise AccessError(f"{what} failed (HTTP {response.status_code}): {response.text[:500]}")
    return dict(response.json())


def _permission_index(client: Client) -> dict[tuple[str, str], int]:
    return {
        (row["permission"]["name"], row["view_menu"]["name"]): int(row["id"])
        for row in _paged(client, "/api/v1/security/permissions-resources/", order="id")
    }


def _role_ids(client: Client) -> dict[str, int]:
    return {row["name"]: int(row["id"]) for row in _paged(client, "/api/v1/security/roles/", order="id")}


def _role_permission_ids(client: Client, role_id: int) -> set[int]:
    return {int(row["id"]) for row in client.get(f"/api/v1/security/roles/{role_id}/permissions/")["result"]}


# --- applying the file ----------------------------------------------------------------------------


@dataclass
class AccessResult:
    roles: dict[str, int] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # login -> created | updated
    dashboards: dict[str, list[str]] = field(default_factory=dict)  # slug -> role names
    rules: dict[str, str] = field(default_factory=dict)  # name -> created | updated


def _ensure_roles(client: Client, spec: AccessSpec, result: AccessResult) -> dict[str, int]:
    ids = _role_ids(client)
    index = _permission_index(client)
    for role in spec.roles.values():
        if role.name not in ids:
            ids[role.name] = int(_check(client.post("/api/v1/security/roles/", json={"name": role.name}), "role")["id"])
        missing = [pair for pair in role.permissions if pair not in index]
        if missing:
            raise AccessError(f"role {role.name!r}: Superset has no permission {missing} (see Settings -> List Roles)")
        wanted = {index[pair] for pair in role.permissions}
        wanted |= {_database_access(index, role.name, name) for name in role.databases}
        for base in role.base_roles:
            if base not in ids:
                raise AccessError(f"role {role.name!r}: base role {base!r} does not exist (run `superset init`)")
            wanted |= _role_permission_ids(client, ids[base])
        if _role_permission_ids(client, ids[role.name]) != wanted:
            _check(
                client.post(
                    f"/api/v1/security/roles/{ids[role.name]}/permissions",
                    json={"permission_view_menu_ids": sorted(wanted)},
                ),
                f"permissions of role {role.name!r}",
            )
        result.roles[role.name] = len(wanted)
    return ids


def _database_access(index: dict[tuple[str, str], int], role: str, database: str) -> int:
    # Superset names the permission "[<database>].(id:<id>)": the id is the metadata DB's.
    found = [
        pid
        for (perm, view), pid in index.items()
        if perm == "database_access" and view.startswith(f"[{database}].(id:")
    ]
    if len(found) != 1:
        raise AccessError(f"role {role!r}: no single database named {database!r} (is it in superset/assets/databases?)")
    return found[0]


def _asset_dashboards(assets_dir: Path) -> set[str]:
    return {
        str((yaml.safe_load(path.read_text()) or {}).get("uuid")) for path in (assets_dir / "dashboards").glob("*.yaml")
    }


def _assign_dashboards(
    client: Client, spec: AccessSpec, role_ids: dict[str, int], assets_dir: Path, result: AccessResult
) -> None:
    dashboards = _paged(client, "/api/v1/dashboard/", "id,slug,uuid,dashboard_title")
    from_assets = _asset_dashboards(assets_dir)
    by_slug = {row["slug"]: row for row in dashboards if row.get("slug")}
    wanted: dict[int, set[str]] = {}
    for role in spec.roles.values():
        if role.dashboards is None:
            continue
        if role.dashboards == ("*",):
            targets = [row for row in dashboards if str(row["uuid"]) in from_assets]
        else:
            unknown = [slug for slug in role.dashboards if slug not in by_slug]
            if unknown:
                raise AccessError(f"role {role.name!r}: no dashboard with slug {unknown}")
            targets = [by_slug[slug] for slug in role.dashboards]
        for row in targets:
            wanted.setdefault(int(row["id"]), set()).add(role.name)
    for row in dashboards:
        names = wanted.get(int(row["id"]))
        if names is None:
            continue
        current = {role["name"] for role in client.get(f"/api/v1/dashboard/{row['id']}")["result"].get("roles", [])}
        # Roles given by hand in the UI are kept; the file's roles are added.
        target = names | current
        if target != current:
            _check(
                client.put(f"/api/v1/dashboard/{row['id']}", json={"roles": sorted(role_ids[n] for n in target)}),
                f"roles of dashboard {row['slug']!r}",
            )
        result.dashboards[row.get("slug") or row["dashboard_title"]] = sorted(target)


def _ensure_users(client: Client, spec: AccessSpec, role_ids: dict[str, int], result: AccessResult) -> None:
    existing = {row["username"]: row for row in _paged(client, "/api/v1/security/users/", "id,username", order="id")}
    for user in spec.users:
        login = user.login()
        body = {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": f"{login}@localhost.invalid",
            "active": True,
            "roles": sorted(role_ids[name] for name in user.roles),
            "password": user.password(),
        }
        if login in existing:
            _check(client.put(f"/api/v1/security/users/{existing[login]['id']}", json=body), f"user {login!r}")
            result.users[login] = "updated"
        else:
            _check(client.post("/api/v1/security/users/", json={**body, "username": login}), f"user {login!r}")
            result.users[login] = "created"


def _ensure_rls(client: Client, spec: AccessSpec, role_ids: dict[str, int], result: AccessResult) -> None:
    datasets = {
        f"{row['schema']}.{row['table_name']}": int(row["id"])
        for row in _paged(client, "/api/v1/dataset/", "id,schema,table_name")
    }
    rules = {row["name"]: row for row in _paged(client, "/api/v1/rowlevelsecurity/", "id,name")}
    wanted: dict[str, tuple[RlsRule, set[str]]] = {}
    for role in spec.roles.values():
        for rule in role.row_level_security:
            wanted.setdefault(rule.name, (rule, set()))[1].add(role.name)
    for name, (rule, roles) in wanted.items():
        missing = [table for table in rule.tables if table not in datasets]
        if missing:
            raise AccessError(f"row-level security {name!r}: no dataset {missing} (is it in superset/assets?)")
        body = {
            "name": name,
            "description": rule.description,
            "filter_type": "Regular",
            "tables": sorted(datasets[table] for table in rule.tables),
            "roles": sorted(role_ids[role] for role in roles),
            "group_key": "",
            "clause": rule.clause,
        }
        if name in rules:
            _check(client.put(f"/api/v1/rowlevelsecurity/{rules[name]['id']}", json=body), f"rule {name!r}")
            result.rules[name] = "updated"
        else:
            _check(client.post("/api/v1/rowlevelsecurity/", json=body), f"rule {name!r}")
            result.rules[name] = "created"


def apply_access(client: Client, assets_dir: Path, spec: AccessSpec | None = None, log: Log = print) -> AccessResult:
    """Make Superset's roles, dashboard roles, users and RLS rules match the roles file."""
    spec = spec or load_spec()
    result = AccessResult()
    role_ids = _ensure_roles(client, spec, result)
    _assign_dashboards(client, spec, role_ids, assets_dir, result)
    _ensure_users(client, spec, role_ids, result)
    _ensure_rls(client, spec, role_ids, result)
    log(
        f"superset access: roles {', '.join(result.roles)}; users {', '.join(result.users)}; "
        f"{len(result.dashboards)} dashboards with roles; {len(result.rules)} row-level-security rules"
    )
    return result


def logins(spec: AccessSpec | None = None) -> Iterable[tuple[str, str, tuple[str, ...]]]:
    """(login, password, roles) of every user in the file, for `make run`'s summary."""
    for user in (spec or load_spec()).users:
        yield user.login(), user.password(), user.roles
