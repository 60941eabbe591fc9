"""sitemap_urls.sitemap_id checked once per statement instead of once per row.

The foreign key `sitemap_urls.sitemap_id -> sitemap_files.id` ran PostgreSQL's referential
check (a trigger running `SELECT ... FOR KEY SHARE` on the file row) for every inserted URL: a
5,000-URL batch ran it 5,000 times, about 9 us each, a third of the batch's time, for one and
the same file row. The same rules are now kept by statement-level triggers, whatever writes the
tables:

- an INSERT or UPDATE of `sitemap_urls` locks the referenced file rows `FOR KEY SHARE` (the
  lock the foreign key takes, so a concurrent delete waits or the insert fails) and raises
  `foreign_key_violation` (SQLSTATE 23503, a 409 in the API) if one is missing: one query over
  the statement's distinct `sitemap_id`s (`REFERENCING NEW TABLE`);
- a DELETE of `sitemap_files` deletes their URLs (`ON DELETE CASCADE`), a TRUNCATE of it (also
  the one cascading from `TRUNCATE jobs CASCADE`) empties `sitemap_urls`;
- changing the `id` of a file that has URLs raises `foreign_key_violation` (`NO ACTION`).

What the declarative constraint gave that this does not: catalog tools (`\\d`, ORM reflection,
diagram generators) no longer show the relation, and a REPEATABLE READ transaction deleting a
file could miss URLs committed after its snapshot by a writer that did not also update the
file row (the project's only writer, `sitemaps.service.store_urls`, updates it in the same
statement, so such a delete fails with a serialization error instead).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 00:00:01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOREIGN_KEY = "fk_sitemap_urls_sitemap_id_sitemap_files"

UPGRADE = [
    """
    CREATE FUNCTION sitemap_urls_check_sitemap_id() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        missing bigint;
    BEGIN
        SELECT wanted.sitemap_id INTO missing
        FROM (SELECT DISTINCT sitemap_id FROM new_rows) AS wanted
        LEFT JOIN LATERAL (
            SELECT file.id FROM sitemap_files AS file
            WHERE file.id = wanted.sitemap_id
            FOR KEY SHARE
        ) AS locked ON true
        WHERE locked.id IS NULL
        LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION
                'insert or update on table "sitemap_urls" violates foreign key constraint "%"',
                'fk_sitemap_urls_sitemap_id_sitemap_files'
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format(
                          'Key (sitemap_id)=(%s) is not present in table "sitemap_files".',
                          missing
                      ),
                      TABLE = 'sitemap_urls',
                      CONSTRAINT = 'fk_sitemap_urls_sitemap_id_sitemap_files';
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION sitemap_files_delete_urls() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM sitemap_urls AS url USING old_rows AS file WHERE url.sitemap_id = file.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION sitemap_files_truncate_urls() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        TRUNCATE sitemap_urls;
        RETURN NULL;
    EXCEPTION WHEN object_in_use THEN
        -- The same TRUNCATE names sitemap_urls too (and has emptied it already), or this
        -- session has it open.
        DELETE FROM sitemap_urls;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION sitemap_files_keep_referenced_id() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT FROM sitemap_urls WHERE sitemap_id = OLD.id) THEN
            RAISE EXCEPTION
                'update on table "sitemap_files" violates foreign key constraint "%" '
                'on table "sitemap_urls"', 'fk_sitemap_urls_sitemap_id_sitemap_files'
                USING ERRCODE = 'foreign_key_violation',
                      DETAIL = format(
                          'Key (id)=(%s) is still referenced from table "sitemap_urls".',
                          OLD.id
                      ),
                      TABLE = 'sitemap_files',
                      CONSTRAINT = 'fk_sitemap_urls_sitemap_id_sitemap_files';
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER sitemap_urls_check_insert AFTER INSERT ON sitemap_urls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitemap_urls_check_sitemap_id()
    """,
    """
    CREATE TRIGGER sitemap_urls_check_update AFTER UPDATE ON sitemap_urls
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitemap_urls_check_sitemap_id()
    """,
    """
    CREATE TRIGGER sitemap_files_delete_urls AFTER DELETE ON sitemap_files
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION sitemap_files_delete_urls()
    """,
    """
    CREATE TRIGGER sitemap_files_truncate_urls AFTER TRUNCATE ON sitemap_files
    FOR EACH STATEMENT EXECUTE FUNCTION sitemap_files_truncate_urls()
    """,
    """
    CREATE TRIGGER sitemap_files_keep_referenced_id BEFORE UPDATE OF id ON sitemap_files
    FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
    EXECUTE FUNCTION sitemap_files_keep_referenced_id()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER sitemap_files_keep_referenced_id ON sitemap_files",
    "DROP TRIGGER sitemap_files_truncate_urls ON sitemap_files",
    "DROP TRIGGER sitemap_files_delete_urls ON sitemap_files",
    "DROP TRIGGER sitemap_urls_check_update ON sitemap_urls",
    "DROP TRIGGER sitemap_urls_check_insert ON sitemap_urls",
    "DROP FUNCTION sitemap_files_keep_referenced_id()",
    "DROP FUNCTION sitemap_files_truncate_urls()",
    "DROP FUNCTION sitemap_files_delete_urls()",
    "DROP FUNCTION sitemap_urls_check_sitemap_id()",
]


def upgrade() -> None:
    """Replace the row-by-row foreign key with the statement-level triggers."""
    op.drop_constraint(FOREIGN_KEY, "sitemap_urls", type_="foreignkey")
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    """Drop the triggers and restore the foreign key (validated against the rows)."""
    for statement in DOWNGRADE:
        op.execute(statement)
    op.create_foreign_key(
        FOREIGN_KEY, "sitemap_urls", "sitemap_files", ["sitemap_id"], ["id"], ondelete="CASCADE"
    )
