/* Heated channel of pressurized water: model and reference values (no GUI; see ../README.md).
 * Laminar flow, temperature (in kelvin) as the thermal scalar, and variable density, viscosity, specific heat and
 * conductivity, which cs_user_physical_properties.c computes each time step. The numbers come from
 * water_case.h, which run_case.py writes. */

#include "cs_defs.h"
#include <math.h>
#include "cs_headers.h"
#include "water_case.h"

BEGIN_C_DECLS

void
cs_user_model(void)
{
  cs_get_glob_turb_model()->iturb = CS_TURB_NONE;  /* Re = rho U H / mu is a few hundred: laminar */
  cs_get_glob_thermal_model()->itherm = 1;         /* temperature */
  cs_get_glob_thermal_model()->itpscl = 1;         /* in kelvin: the surrogate's input unit */
}

void
cs_user_parameters(cs_domain_t *domain)
{
  cs_fluid_properties_t *fp = cs_get_glob_fluid_properties();

  cs_get_glob_time_step_options()->idtvar = 0;     /* constant time step */
  domain->time_step->dt_ref = CASE_DT;
  domain->time_step->nt_max = CASE_NT_MAX;

  /* Properties vary in space and time: cs_user_physical_properties() fills the fields. The reference values
     only start the first time step (they are water's at CASE_T_IN, CASE_P0). */
  fp->irovar = 1;
  fp->ivivar = 1;
  fp->icp = 0;                                     /* a specific heat field */
  fp->ro0 = CASE_RHO0;
  fp->viscl0 = CASE_MU0;
  fp->cp0 = CASE_CP0;
  fp->p0 = CASE_P0;
  fp->t0 = CASE_T_IN;

  /* Conductivity: a field too (for the temperature scalar, its "diffusivity" is lambda in W/m/K) */
  cs_field_set_key_int(cs_thermal_model_field(), cs_field_key_id("diffusivity_id"), 0);
  cs_field_set_key_double(cs_thermal_model_field(), cs_field_key_id("diffusivity_ref"), CASE_LAMBDA0);
}

END_C_DECLS
