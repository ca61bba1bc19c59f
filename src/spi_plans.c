/*-------------------------------------------------------------------------
 *
 * spi_plans.c
 *	  Statements prepared once per backend and kept for its life.
 *
 * The worker runs the same few statements for as long as it lives, and a
 * session may call run_rule() many times: each statement is parsed and
 * planned on first use and its plan kept (SPI_keepplan) in a static
 * pointer of the caller's.
 *
 * src/spi_plans.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"

#include "lambda_detect.h"

/*
 * PrepareKeptPlan prepares sql into *cache unless already done and returns
 * the plan.  cursor_options go to SPI_prepare_cursor: CURSOR_OPT_CUSTOM_PLAN
 * makes a statement be planned afresh for its parameters at every
 * execution, so that a plan made while a table was small never outlives
 * that.
 */
SPIPlanPtr
PrepareKeptPlan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes,
				int cursor_options)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}
