// Optional (main.bicep grantFeatureRegistration): the register-features step's rights at the
// subscription's scope, where preview features and resource providers are registered.
//
// No built-in role holds these actions without far more: the narrowest built-in one is
// Contributor on the whole subscription (it could then change or delete anything there). So this
// defines a custom role with only the actions infra/permissions.json lists for the subscription
// (customRoles.subscription: what shared/arm.py's register-features calls) and assigns it.
targetScope = 'subscription'

@description('Principal id of the app\'s identity.')
param principalId string

var permissions = loadJsonContent('../permissions.json')
var role = permissions.customRoles.subscription
// Role names are unique per tenant: the subscription and the identity make this one unique, so a
// second environment (in this or another subscription of the tenant) never collides with it.
var roleId = guid(subscription().id, principalId, 'gpuprov-feature-registration-role')

resource featureRegistration 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
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

resource registerFeatures 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, featureRegistration.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: featureRegistration.id
  }
}
