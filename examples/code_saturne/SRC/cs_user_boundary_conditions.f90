! The boundary conditions are set in cs_user_boundary_conditions.c. This empty routine replaces the library's
! default Fortran one, which stops any run that has no GUI setup file (code_saturne 6.0).
subroutine cs_f_user_boundary_conditions &
 ( nvar   , nscal  ,                                              &
   icodcl , itrifb , itypfb , izfppp ,                            &
   dt     ,                                                       &
   rcodcl )

use paramx
use mesh

implicit none

integer          nvar   , nscal
integer          icodcl(nfabor,nvar)
integer          itrifb(nfabor), itypfb(nfabor)
integer          izfppp(nfabor)
double precision dt(ncelet)
double precision rcodcl(nfabor,nvar,3)

! Nothing to set. The arguments are mentioned once (never run: nvar >= 1) so that the solver's strict compile
! flags (-Wunused-dummy-argument) stay quiet.
if (nvar .lt. 0) then
  icodcl(1,1) = itrifb(1) + itypfb(1) + izfppp(1) + nscal
  rcodcl(1,1,1) = dt(1)
endif

return
end subroutine cs_f_user_boundary_conditions
