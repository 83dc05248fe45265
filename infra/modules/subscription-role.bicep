// A custom role at the subscription's scope, built from one entry of infra/permissions.json's
// customRoles: `subscription` (optional, main.bicep grantFeatureRegistration: the register-features
// step's rights, where preview features and resource providers are registered) or `capacity`
// (always: the preflight's reads of Compute VM SKUs and vCPU usages, which exist only at the
// subscription's scope: /subscriptions/{id}/providers/Microsoft.Compute/skus and .../usages).
//
// No built-in role holds these actions without far more: for registering, the narrowest is
// Contributor on the whole subscription (it could then change or delete anything there); for the
// Compute reads, Reader (it could then read every resource there). So this defines a custom role with only the actions infra/permissions.json lists for that role and
// assigns it.
targetScope = 'subscription'

@description('Principal id of the app\'s identity.')
param principalId string

@description('Which subscription-scoped custom role of infra/permissions.json: subscription or capacity.')
@allowed(['subscription', 'capacity'])
param roleKey string

var permissions = loadJsonContent('../permissions.json')
var role = permissions.customRoles[roleKey]
// Role names are unique per tenant: the subscription and the identity make this one unique, so a
// second environment (in this or another subscription of the tenant) never collides with it.
var roleId = guid(subscription().id, principalId, 'gpuprov-${roleKey}-role')

resource subscriptionRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleId
  properties: {
    roleName: '${role.roleName} (${roleId})'
    description: role.description
    type: 'CustomRole'
    assignableScopes: [subscription().id]
    permissions: [
      {
        actions: [for entry in role.actions: entry.action]
        notActions: []
      }
    ]
  }
}

// roleDefinitionId names the new definition's id: ARM creates the assignment only after the
// definition (an implicit dependency); its deterministic name makes a re-run after a
// propagation delay safe.

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, subscriptionRole.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionRole.id
  }
}
