/* At the end of the run: write every cell's centre, temperature and density (case_fields.csv) and the run's
 * counters and timings (case_summary.txt) into the run directory, for run_case.py to compare the two runs. */

#include "cs_defs.h"
#include <math.h>
#include <stdio.h>
#include "cs_headers.h"
#include "water_case.h"
#include "water_case_stats.h"

BEGIN_C_DECLS

static double solver_start = 0.0;

void
cs_user_extra_operations_initialize(cs_domain_t *domain)
{
  CS_UNUSED(domain);
  if (cs_glob_n_ranks > 1)
    bft_error(__FILE__, __LINE__, 0, "this example writes its fields from one rank: run it with -n 1");
  solver_start = cs_timer_wtime();
}

void
cs_user_extra_operations(cs_domain_t *domain)
{
  CS_UNUSED(domain);
}

void
cs_user_extra_operations_finalize(cs_domain_t *domain)
{
  const cs_lnum_t n_cells = domain->mesh->n_cells;
  const cs_real_3_t *xyz = (const cs_real_3_t *)domain->mesh_quantities->cell_cen;
  const cs_real_t *T = cs_thermal_model_field()->val, *rho = CS_F_(rho)->val;
  const double solver_seconds = cs_timer_wtime() - solver_start;
  FILE *f = fopen("case_fields.csv", "w");
  cs_lnum_t c;

  if (f == NULL)
    bft_error(__FILE__, __LINE__, 0, "cannot write case_fields.csv");
  fprintf(f, "x,y,T,rho\n");
  for (c = 0; c < n_cells; c++)
    fprintf(f, "%.9e,%.9e,%.17g,%.17g\n", xyz[c][0], xyz[c][1], T[c], rho[c]);
  fclose(f);

  f = fopen("case_summary.txt", "w");
  if (f == NULL)
    bft_error(__FILE__, __LINE__, 0, "cannot write case_summary.txt");
  fprintf(f, "cells=%ld\niterations=%d\nproperty_seconds=%.6f\nsolver_seconds=%.6f\nproperty_calls=%ld\n"
          "clipped_cells=%ld\nsurrogate=%d\n", (long)n_cells, cs_glob_time_step->nt_cur,
          water_case_property_seconds, solver_seconds, water_case_property_calls, water_case_clipped_cells,
          CASE_USE_SURROGATE);
  fclose(f);
  bft_printf("water properties: %ld cell evaluation(s) outside the valid range over the run; %.3f s of %.3f s "
             "in cs_user_physical_properties\n", water_case_clipped_cells, water_case_property_seconds,
             solver_seconds);
}

END_C_DECLS
