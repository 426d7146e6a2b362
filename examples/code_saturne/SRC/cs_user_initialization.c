/* Initial state: the channel full of water at the inlet temperature, moving at the inlet velocity. */

#include "cs_defs.h"
#include <math.h>
#include "cs_headers.h"
#include "water_case.h"

BEGIN_C_DECLS

void
cs_user_initialization(cs_domain_t *domain)
{
  const cs_lnum_t n_cells = domain->mesh->n_cells;
  cs_real_t *T = cs_thermal_model_field()->val;
  cs_real_3_t *u = (cs_real_3_t *)CS_F_(vel)->val;
  cs_lnum_t c;

  for (c = 0; c < n_cells; c++) {
    T[c] = CASE_T_IN;
    u[c][0] = CASE_U_IN;
    u[c][1] = 0.0;
    u[c][2] = 0.0;
  }
}

END_C_DECLS
