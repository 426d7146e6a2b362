/* The heated-pipe march of heated_pipe.py on the generated C code (python -m pipeline codegen ... --lang c).
 *   cc -std=c99 -O2 -I generated heated_pipe.c generated/water.c generated/colebrook.c generated/gnielinski.c -lm
 *   ./a.out [segments]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "water.h"
#include "colebrook.h"
#include "gnielinski.h"

int main(int argc, char **argv)
{
    const double pi = 3.14159265358979323846;
    const double D = 0.02, L = 20.0, roughness = 4.5e-5, m_dot = 0.3, q_flux = 5.0e4;
    const double T_in = 300.0, p_in = 1.0e6, area = pi * D * D / 4;
    const int segments = argc > 1 ? atoi(argv[1]) : 2000;
    double T = T_in, p = p_in, dx = L / segments, t_wall_max = 0.0;
    int i;
    for (i = 0; i < segments; ++i) {
        double props[4], state[2], re_ed[2], re_pr[2], fd, nu;
        state[0] = T; state[1] = p;
        if (water_eval(state, props) != WATER_OK) { fprintf(stderr, "water: state out of range\n"); return 1; }
        {
            const double rho = props[0], mu = props[1], k = props[2], cp = props[3];
            const double v = m_dot / (rho * area), Re = rho * v * D / mu, Pr = mu * cp / k;
            re_pr[0] = Re; re_pr[1] = Pr;
            re_ed[0] = Re; re_ed[1] = roughness / D;
            if (gnielinski_eval(re_pr, &nu) != GNIELINSKI_OK || colebrook_eval(re_ed, &fd) != COLEBROOK_OK) {
                fprintf(stderr, "correlation input out of range at segment %d\n", i);
                return 1;
            }
            if (T + q_flux / (nu * k / D) > t_wall_max) t_wall_max = T + q_flux / (nu * k / D);
            p -= fd * dx / D * rho * v * v / 2;
            T += q_flux * pi * D * dx / (m_dot * cp);
        }
    }
    printf("outlet_T_K=%.9g pressure_drop_Pa=%.9g max_wall_T_K=%.9g\n", T, p_in - p, t_wall_max);
    return 0;
}
