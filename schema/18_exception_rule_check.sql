-- An exception's rule is checked by the extension, not by a foreign key.
--
-- 1.0 made exceptions.rule a foreign key to rules.rule (ON UPDATE CASCADE ON
-- DELETE CASCADE).  Under the Citus plan (docs/scaling.md) both tables become
-- reference tables, and Citus 13.2.2 refuses that while the key exists: it
-- would convert every table in the key's graph and drop objects of the
-- extension, and a key dropped on the coordinator alone stays on the
-- workers' copies.  Three triggers keep what the key did on one server:
--
--   * an exception naming a rule that does not exist is refused, 23503
--     (foreign_key_violation), as before;
--   * renaming a rule (UPDATE rules SET rule = ...) renames its exceptions;
--   * deleting a rule deletes its exceptions.
--
-- Concurrency, as the key had it: the check takes FOR KEY SHARE on the rule's
-- row, so a DELETE or rename of the rule in another transaction waits for the
-- exception's transaction, and then cascades to the exception (READ COMMITTED:
-- the cascade's statement sees the committed exception); an exception
-- inserted while the rule's DELETE is uncommitted waits for it, and is
-- refused once it commits.  Unlike the key, the cascade reads with its
-- transaction's snapshot: a REPEATABLE READ transaction deleting a rule does
-- not see, and so does not delete, an exception another transaction committed
-- after its snapshot was taken (the key raised 40001 there).
--
-- Under the Citus plan rules and exceptions are reference tables and the
-- triggers fire on each node's placement of them (citus.enable_unsafe_triggers),
-- where a distributed query cannot run: there they read and write that node's
-- placement of the other table (tools/citus-check.sh tries it).
--
-- The functions are SECURITY DEFINER, as the key's checks ran as the tables'
-- owner: inserting an exception needs no UPDATE on rules (which FOR KEY SHARE
-- would need), and renaming or deleting a rule no privilege on exceptions.

ALTER TABLE lambda_detect.exceptions DROP CONSTRAINT exceptions_rule_fkey;

CREATE FUNCTION lambda_detect.check_exception_rule()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    placement text;
    found_rule boolean;
BEGIN
    IF NEW.rule IS NULL THEN
        RETURN NEW;
    END IF;
    -- FOR KEY SHARE: the rule cannot be deleted or renamed until this
    -- transaction ends, as with a foreign key
    IF TG_TABLE_NAME = 'exceptions' THEN
        PERFORM FROM lambda_detect.rules r WHERE r.rule = NEW.rule FOR KEY SHARE;
        found_rule := FOUND;
    ELSE
        -- Under Citus the trigger fires on this node's placement of the
        -- reference table, where no distributed query may run: read this
        -- node's placement of rules (reference tables: one shard, on every
        -- node, named table_shardid)
        EXECUTE 'SELECT ''rules_'' || s.shardid FROM pg_catalog.pg_dist_shard s
                  WHERE s.logicalrelid = ''lambda_detect.rules''::pg_catalog.regclass'
           INTO placement;
        EXECUTE pg_catalog.format('SELECT true FROM lambda_detect.%I r WHERE r.rule = $1 FOR KEY SHARE',
                                  placement)
           INTO found_rule USING NEW.rule;
    END IF;
    IF NOT coalesce(found_rule, false) THEN
        RAISE EXCEPTION 'exception names rule "%", which does not exist', NEW.rule
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'SELECT rule FROM lambda_detect.rules lists the rules; an exception with rule NULL applies to every rule.',
                  SCHEMA = 'lambda_detect', TABLE = 'exceptions', COLUMN = 'rule';
    END IF;
    RETURN NEW;
END;
$$;

COMMENT ON FUNCTION lambda_detect.check_exception_rule() IS
    'Trigger function: refuses an exception whose rule does not exist (23503, as the foreign key of 1.0 did) and locks the rule''s row FOR KEY SHARE until the transaction ends (under Citus, on a placement: that node''s placement of rules).  SECURITY DEFINER, so that adding an exception needs no UPDATE on rules';

CREATE TRIGGER exceptions_check_rule
    BEFORE INSERT OR UPDATE OF rule ON lambda_detect.exceptions
    FOR EACH ROW
    EXECUTE FUNCTION lambda_detect.check_exception_rule();

COMMENT ON TRIGGER exceptions_check_rule ON lambda_detect.exceptions IS
    'An exception names an existing rule or none (NULL: every rule); replaces the foreign key exceptions_rule_fkey of 1.0';

CREATE FUNCTION lambda_detect.cascade_rule_to_exceptions()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    placement text;
BEGIN
    IF TG_TABLE_NAME = 'rules' THEN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM lambda_detect.exceptions x WHERE x.rule = OLD.rule;
        ELSE
            UPDATE lambda_detect.exceptions x SET rule = NEW.rule WHERE x.rule = OLD.rule;
        END IF;
        RETURN NULL;
    END IF;
    -- Under Citus: this node's placement of rules, so this node's placement
    -- of exceptions (see check_exception_rule())
    EXECUTE 'SELECT ''exceptions_'' || s.shardid FROM pg_catalog.pg_dist_shard s
              WHERE s.logicalrelid = ''lambda_detect.exceptions''::pg_catalog.regclass'
       INTO placement;
    IF TG_OP = 'DELETE' THEN
        EXECUTE pg_catalog.format('DELETE FROM lambda_detect.%I x WHERE x.rule = $1', placement)
          USING OLD.rule;
    ELSE
        EXECUTE pg_catalog.format('UPDATE lambda_detect.%I x SET rule = $1 WHERE x.rule = $2', placement)
          USING NEW.rule, OLD.rule;
    END IF;
    RETURN NULL;
END;
$$;

COMMENT ON FUNCTION lambda_detect.cascade_rule_to_exceptions() IS
    'Trigger function: a renamed rule renames its exceptions, a deleted rule deletes them (the ON UPDATE CASCADE ON DELETE CASCADE of 1.0''s foreign key; under Citus, on a placement: that node''s placement of exceptions).  SECURITY DEFINER, so that renaming or deleting a rule needs no privilege on exceptions';

CREATE TRIGGER rules_rename_exceptions
    AFTER UPDATE OF rule ON lambda_detect.rules
    FOR EACH ROW
    WHEN (OLD.rule IS DISTINCT FROM NEW.rule)
    EXECUTE FUNCTION lambda_detect.cascade_rule_to_exceptions();

COMMENT ON TRIGGER rules_rename_exceptions ON lambda_detect.rules IS
    'Renaming a rule renames its exceptions (exceptions.rule)';

CREATE TRIGGER rules_delete_exceptions
    AFTER DELETE ON lambda_detect.rules
    FOR EACH ROW
    EXECUTE FUNCTION lambda_detect.cascade_rule_to_exceptions();

COMMENT ON TRIGGER rules_delete_exceptions ON lambda_detect.rules IS
    'Deleting a rule deletes its exceptions';

REVOKE ALL ON FUNCTION lambda_detect.check_exception_rule() FROM PUBLIC;
REVOKE ALL ON FUNCTION lambda_detect.cascade_rule_to_exceptions() FROM PUBLIC;
