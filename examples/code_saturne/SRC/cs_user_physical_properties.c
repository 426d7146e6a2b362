/* Water's density, viscosity, specific heat and conductivity in every cell, each time step, from either
 *   - the surrogate: the C that `python -m pipeline codegen water --lang c` generates (water.c, water.h), called
 *     once per time step on all cells as one batch (water_eval_batch, rows of (T, p)); or
 *   - the reference: CoolProp tabulated in T at the case pressure (water_table.h), linear interpolation; the
 *     table is fine enough that interpolation adds < 1e-6 relative (run_case.py checks it when it writes it).
 * water_case.h (written by run_case.py from the model card) chooses which, and gives the card's valid range.
 *
 * Out-of-domain policy: a cell whose temperature lies outside the surrogate's valid range at the case pressure
 * (the card's box, narrowed by its domain bounds such as T <= T_sat(p) - 2 K) gets the properties at the nearest
 * valid temperature; such cells are counted, reported in the log for the step, and summed over the run. Both
 * runs apply the same policy, so they differ only in where the properties come from.
 *
 * The pressure argument is the thermodynamic reference pressure CASE_P0: the dynamic pressure differences in
 * this channel are a few pascals, far below what changes water's properties. */

#include "cs_defs.h"
#include <math.h>
#include "cs_headers.h"
#include "water_case.h"
#include "water_case_stats.h"
#if CASE_USE_SURROGATE
#include "water.h"
#else
#include "water_table.h"
#endif

BEGIN_C_DECLS

double water_case_property_seconds = 0.0;
long water_case_clipped_cells = 0;
long water_case_property_calls = 0;

#if !CASE_USE_SURROGATE
/* Linear interpolation in the CoolProp table: T is within [REF_T_MIN, REF_T_MAX] (clipped before). */
static void
reference_properties(double T, double *y)
{
  const double t = (T - REF_T_MIN) / REF_DT;
  int k = (int)t, j;
  double w;
  if (k > REF_N - 2) k = REF_N - 2;
  if (k < 0) k = 0;
  w = t - k;
  for (j = 0; j < 4; j++)
    y[j] = ref_table[k][j] + w * (ref_table[k + 1][j] - ref_table[k][j]);
}
#endif

void
cs_user_physical_properties(cs_domain_t *domain)
{
  const double start = cs_timer_wtime();
  const cs_lnum_t n_cells = domain->mesh->n_cells;
  const cs_real_t *T = cs_thermal_model_field()->val;
  const int kivisl = cs_field_key_id("diffusivity_id");
  cs_real_t *rho = CS_F_(rho)->val, *mu = CS_F_(mu)->val, *cp = CS_F_(cp)->val;
  cs_real_t *lambda = cs_field_by_id(cs_field_get_key_int(cs_thermal_model_field(), kivisl))->val;
  double *x = NULL, *y = NULL;
  long clipped = 0;
  cs_lnum_t c;

  /* structure of arrays in (the solver's fields), rows of (T, p) for the batch call, structure of arrays out */
  BFT_MALLOC(x, (size_t)n_cells * CASE_N_INPUTS, double);
  BFT_MALLOC(y, (size_t)n_cells * CASE_N_OUTPUTS, double);
  for (c = 0; c < n_cells; c++) {
    double Tc = T[c];
    if (!(Tc >= CASE_T_MIN)) {          /* also catches NaN, which then gets the lower bound */
      Tc = CASE_T_MIN;
      clipped++;
    } else if (Tc > CASE_T_MAX) {
      Tc = CASE_T_MAX;
      clipped++;
    }
    x[c * CASE_N_INPUTS + CASE_IN_T] = Tc;
    x[c * CASE_N_INPUTS + CASE_IN_P] = CASE_P0;
  }

#if CASE_USE_SURROGATE
  {
    const int status = water_eval_batch((size_t)n_cells, x, y);
    if (status != WATER_OK)
      bft_error(__FILE__, __LINE__, 0, "water_eval_batch returned %d inside the clipped range", status);
  }
#else
  for (c = 0; c < n_cells; c++) {
    double r[4];
    reference_properties(x[c * CASE_N_INPUTS + CASE_IN_T], r);
    y[c * CASE_N_OUTPUTS + CASE_OUT_RHO] = r[0];
    y[c * CASE_N_OUTPUTS + CASE_OUT_MU] = r[1];
    y[c * CASE_N_OUTPUTS + CASE_OUT_CP] = r[2];
    y[c * CASE_N_OUTPUTS + CASE_OUT_K] = r[3];
  }
#endif

  for (c = 0; c < n_cells; c++) {
    rho[c] = y[c * CASE_N_OUTPUTS + CASE_OUT_RHO];
    mu[c] = y[c * CASE_N_OUTPUTS + CASE_OUT_MU];
    cp[c] = y[c * CASE_N_OUTPUTS + CASE_OUT_CP];
    lambda[c] = y[c * CASE_N_OUTPUTS + CASE_OUT_K];
  }
  BFT_FREE(x);
  BFT_FREE(y);

  if (clipped > 0)
    bft_printf("water properties: %ld cell(s) outside T in [%g, %g] K at p = %g Pa at time step %d: "
               "evaluated at the nearest valid temperature\n",
               clipped, CASE_T_MIN, CASE_T_MAX, CASE_P0, cs_glob_time_step->nt_cur);
  water_case_clipped_cells += clipped;
  water_case_property_calls++;
  water_case_property_seconds += cs_timer_wtime() - start;
}

END_C_DECLS
