-- The partitions a regression test made go, so that later tests see an
-- unpartitioned start (events_default only).
DO $$
DECLARE
  p regclass;
BEGIN
  FOR p IN SELECT partition FROM lambda_detect.event_partitions WHERE NOT is_default LOOP
    EXECUTE format('DROP TABLE %s', p);
  END LOOP;
END $$;
