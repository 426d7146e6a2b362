! The heated-pipe march of heated_pipe.py on the generated Fortran (python -m pipeline codegen ... --lang fortran).
!   gfortran -O2 generated/water_surrogate.f90 generated/colebrook_surrogate.f90 \
!            generated/gnielinski_surrogate.f90 heated_pipe.f90
!   ./a.out [segments]
program heated_pipe
  use, intrinsic :: iso_fortran_env, only: dp => real64
  use water_surrogate
  use colebrook_surrogate
  use gnielinski_surrogate
  implicit none
  real(dp), parameter :: pi = 3.14159265358979323846_dp
  real(dp), parameter :: D = 0.02_dp, L = 20.0_dp, roughness = 4.5e-5_dp, m_dot = 0.3_dp, q_flux = 5.0e4_dp
  real(dp), parameter :: T_in = 300.0_dp, p_in = 1.0e6_dp, area = pi * D * D / 4
  real(dp) :: T, p, dx, t_wall_max, props(4), fd(1), nu(1), rho, mu, k, cp, v, Re, Pr, h
  integer :: segments, i
  character(len=32) :: arg
  segments = 2000
  if (command_argument_count() > 0) then
    call get_command_argument(1, arg)
    read (arg, *) segments
  end if
  T = T_in
  p = p_in
  dx = L / segments
  t_wall_max = 0.0_dp
  do i = 1, segments
    if (water_eval([T, p], props) /= water_ok) stop 'water: state out of range'
    rho = props(1); mu = props(2); k = props(3); cp = props(4)
    v = m_dot / (rho * area)
    Re = rho * v * D / mu
    Pr = mu * cp / k
    if (gnielinski_eval([Re, Pr], nu) /= gnielinski_ok) stop 'gnielinski: input out of range'
    if (colebrook_eval([Re, roughness / D], fd) /= colebrook_ok) stop 'colebrook: input out of range'
    h = nu(1) * k / D
    t_wall_max = max(t_wall_max, T + q_flux / h)
    p = p - fd(1) * dx / D * rho * v * v / 2
    T = T + q_flux * pi * D * dx / (m_dot * cp)
  end do
  write (*, '(a, es16.9e2, a, es16.9e2, a, es16.9e2)') 'outlet_T_K=', T, ' pressure_drop_Pa=', p_in - p, &
      ' max_wall_T_K=', t_wall_max
end program heated_pipe
