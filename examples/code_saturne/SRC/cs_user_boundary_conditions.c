/* Heated channel: inlet at x = 0 (uniform velocity and temperature), outlet at x = L, walls at y = 0 and y = H
 * held at CASE_T_WALL, symmetry on the two z planes (a 2-D flow on a one-cell-thick mesh). Faces are selected
 * by position, so the mesh needs no groups. */

#include "cs_defs.h"
#include <math.h>
#include "cs_headers.h"
#include "water_case.h"

BEGIN_C_DECLS

static void
select_faces(const char *criteria, cs_lnum_t *n, cs_lnum_t *list)
{
  cs_selector_get_b_face_list(criteria, n, list);
}

void
cs_user_boundary_conditions(int         nvar,
                            int         bc_type[],
                            int         icodcl[],
                            cs_real_t   rcodcl[])
{
  const cs_lnum_t n_b_faces = cs_glob_mesh->n_b_faces;
  const int keyvar = cs_field_key_id("variable_id");
  const int iu = cs_field_get_key_int(CS_F_(vel), keyvar) - 1;       /* u, v, w are iu, iu + 1, iu + 2 */
  const int it = cs_field_get_key_int(cs_thermal_model_field(), keyvar) - 1;
  cs_lnum_t n = 0, i;
  cs_lnum_t *list = NULL;
  CS_UNUSED(nvar);

  BFT_MALLOC(list, n_b_faces, cs_lnum_t);

  select_faces("x < " CASE_EPS_STR, &n, list);
  for (i = 0; i < n; i++) {
    const cs_lnum_t f = list[i];
    bc_type[f] = CS_INLET;
    rcodcl[iu * n_b_faces + f] = CASE_U_IN;
    rcodcl[(iu + 1) * n_b_faces + f] = 0.0;
    rcodcl[(iu + 2) * n_b_faces + f] = 0.0;
    rcodcl[it * n_b_faces + f] = CASE_T_IN;
  }

  select_faces("x > " CASE_L_MINUS_EPS_STR, &n, list);
  for (i = 0; i < n; i++)
    bc_type[list[i]] = CS_OUTLET;

  select_faces("y < " CASE_EPS_STR " or y > " CASE_H_MINUS_EPS_STR, &n, list);
  for (i = 0; i < n; i++) {
    const cs_lnum_t f = list[i];
    bc_type[f] = CS_SMOOTHWALL;
    icodcl[it * n_b_faces + f] = 5;                /* Dirichlet on the wall temperature */
    rcodcl[it * n_b_faces + f] = CASE_T_WALL;
  }

  select_faces("z < " CASE_EPS_STR " or z > " CASE_W_MINUS_EPS_STR, &n, list);
  for (i = 0; i < n; i++)
    bc_type[list[i]] = CS_SYMMETRY;

  BFT_FREE(list);
}

END_C_DECLS
